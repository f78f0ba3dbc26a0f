"""W5: 10,000 invocations suspended on a one-hour durable sleep; runtime + worker RSS
once they are all parked, against the idle RSS measured before the sends."""

from __future__ import annotations

import asyncio
import time

from .harness import (
    MIB,
    ErrorLog,
    Meter,
    Outcome,
    RssSampler,
    Settings,
    closed_loop,
    median,
    send,
    session,
    warm_up,
)

SLEEP_MS = 3_600_000
CONCURRENCY = 32
FULL = 10_000


async def settled_rss(rt, *, interval: float = 0.5, window: int = 6, limit: float = 60.0) -> int:
    """RSS once it stops moving: the last ``window`` samples within 1 MiB, or ``limit`` s."""
    samples: list[int] = []
    deadline = time.perf_counter() + limit
    while True:
        samples.append(rt.rss())
        last = samples[-window:]
        if len(last) == window and max(last) - min(last) < MIB:
            return int(median(last))
        if time.perf_counter() > deadline:
            return int(median(last))
        await asyncio.sleep(interval)


async def run(settings: Settings) -> Outcome:
    total = settings.n(FULL, 2000)
    async with session(settings, "W5", CONCURRENCY) as s:
        await warm_up(s.client, "/Sleeper/sleep", 1, n=1)  # the worker has loaded the app
        idle = await settled_rss(s.rt, window=4)
        errors = ErrorLog()
        ids: list[str] = []

        async def one(i: int) -> None:
            ids.append(await send(s.client, "/Sleeper/sleep", SLEEP_MS))

        with RssSampler(s.rt) as sampler, Meter(s.rt) as meter:
            _, wall = await closed_loop(total, CONCURRENCY, one, errors)
            after = await settled_rss(s.rt)
        delta = after - idle
        m = {
            "calls": total,
            "ok": len(ids),
            "sends_per_s": len(ids) / wall,
            "idle_mib": idle / MIB,
            "after_mib": after / MIB,
            "peak_mib": sampler.peak / MIB,
            "delta_mib": delta / MIB,
            "bytes_per_inv": delta / max(1, len(ids)),
            "delta_10k_mib": delta / MIB * FULL / max(1, len(ids)),
            **meter.metrics(),
        }
        return Outcome(metrics=m, errors=errors.lines())
