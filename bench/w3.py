"""W3: 500 one-way sends of ``Sleeper.sleep(1000)`` at once; the time from the first
send to all completed, and each invocation's overhead beyond the 1 s sleep, p50/p99.

An invocation's overhead is counted over its own life, by the runtime's clock:
``created_at`` -> ``completed_at`` - 1 s (the target's figure; it exists from the moment
it is created, a little before the client gets the 202). The client's view is reported
beside it: from the 202 to the result, and from the moment the send was issued (that
adds the send's own wait behind the other sends: the ingress's throughput, which
"first send -> all done" measures).

Each invocation is attached right after its send is accepted, and all attaches wait at
the same time (the pool has a connection for each), so a completion is seen when it
happens rather than when a slot frees up.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import httpx

from .harness import (
    ErrorLog,
    Meter,
    Outcome,
    Settings,
    describe,
    percentile,
    send,
    session,
    wait_result,
    warm_up,
)

SLEEP_MS = 1000
SEND_CONCURRENCY = 32


async def run(settings: Settings) -> Outcome:
    total = settings.n(500, 100)
    async with session(settings, "W3", SEND_CONCURRENCY + total) as s:
        await warm_up(s.client, "/Sleeper/sleep", 1, n=1)
        errors = ErrorLog()
        send_sem = asyncio.Semaphore(SEND_CONCURRENCY)
        sent: list[float] = []
        done: list[float] = []
        overhead: list[float] = []  # from the send issued
        overhead_acc: list[float] = []  # from the send accepted (202 received)
        invs: list[str] = []
        deadline = time.perf_counter() + 120 + total * 0.05

        async def one(i: int) -> None:
            try:
                async with send_sem:
                    t_send = time.perf_counter()
                    inv = await send(s.client, "/Sleeper/sleep", SLEEP_MS)
                    t_acc = time.perf_counter()
                sent.append(t_send)
                invs.append(inv)
                r = await wait_result(s.client, inv, deadline=deadline)
                t_done = time.perf_counter()
                if r.json() != SLEEP_MS:
                    raise AssertionError(f"Sleeper/sleep returned {r.text[:100]!r}")
                done.append(t_done)
                overhead.append(t_done - t_send - SLEEP_MS / 1e3)
                overhead_acc.append(t_done - t_acc - SLEEP_MS / 1e3)
            except Exception as e:
                errors.add(describe(e))

        with Meter(s.rt) as meter:
            await asyncio.gather(*(one(i) for i in range(total)))
        lifetimes = await _lifetimes(s.rt.admin_url, invs)
        m = {
            "calls": total,
            "ok": len(done),
            "all_done_s": (max(done) - min(sent)) if done and sent else float("nan"),
            "send_phase_s": (max(sent) - min(sent)) if sent else float("nan"),
            "overhead_p50_ms": percentile(overhead, 50) * 1e3,
            "overhead_p99_ms": percentile(overhead, 99) * 1e3,
            "overhead_acc_p50_ms": percentile(overhead_acc, 50) * 1e3,
            "overhead_acc_p99_ms": percentile(overhead_acc, 99) * 1e3,
            "lifetime_over_p50_ms": percentile(lifetimes, 50) * 1e3,
            "lifetime_over_p99_ms": percentile(lifetimes, 99) * 1e3,
            **meter.metrics(),
        }
        return Outcome(metrics=m, errors=errors.lines())


async def _lifetimes(admin_url: str, invs: list[str]) -> list[float]:
    """created_at -> completed_at - 1 s of each invocation, by the runtime's clock."""
    out: list[float] = []
    async with httpx.AsyncClient(base_url=admin_url, timeout=30) as admin:
        for inv in invs:
            row = (await admin.get(f"/api/invocations/{inv}")).json()
            created, completed = row.get("created_at"), row.get("completed_at")
            if created and completed:
                dt = _when(completed) - _when(created)
                out.append(dt.total_seconds() - SLEEP_MS / 1e3)
    return out


def _when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.removesuffix("Z"))
