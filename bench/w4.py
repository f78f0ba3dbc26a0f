"""W4: a handler awaiting an awakeable, resolved over HTTP; 50 runs one after another.

Each run: send ``Waiter.wait``; wait until its awakeable id appears in BENCH_AWAKE_FILE
(the handler's "publish" step writes it); start an attach and give it 20 ms to be
waiting; then time ``POST /restate/awakeables/{id}/resolve`` -> the attach returns.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from .harness import (
    BenchError,
    ErrorLog,
    Meter,
    Outcome,
    Settings,
    body,
    describe,
    latency_metrics,
    send,
    session,
    wait_result,
)

ATTACH_HEAD_START = 0.02
AWAKE_FILE = "awakeables.txt"


def _env(workdir: Path) -> dict[str, str]:
    return {"BENCH_AWAKE_FILE": str(workdir / AWAKE_FILE)}


class IdFile:
    """Reads the lines appended to a file since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.buf = b""

    def new_lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        return [ln.decode() for ln in lines if ln.strip()]

    async def next_id(self, timeout: float = 20.0) -> str:
        deadline = time.perf_counter() + timeout
        while True:
            lines = self.new_lines()
            if lines:
                return lines[-1].strip()
            if time.perf_counter() > deadline:
                raise BenchError(f"no awakeable id in {self.path.name} after {timeout:.0f} s")
            await asyncio.sleep(0.001)


async def run(settings: Settings) -> Outcome:
    total = settings.n(50, 20)
    async with session(settings, "W4", 4, env=_env) as s:
        client, rt = s.client, s.rt
        ids = IdFile(s.workdir / AWAKE_FILE)
        errors = ErrorLog()
        lat: list[float] = []
        resolve_lat: list[float] = []
        retries = 0

        async def one(i: int, measure: bool) -> None:
            nonlocal retries
            inv = await send(client, "/Waiter/wait")
            aw_id = await ids.next_id()
            attach = asyncio.create_task(
                wait_result(client, inv, deadline=time.perf_counter() + 60)
            )
            await asyncio.sleep(ATTACH_HEAD_START)
            if attach.done():
                attach.result()  # raises when the attach failed
                raise BenchError("attach returned before the awakeable was resolved")
            value = f"v{i}"
            t0 = time.perf_counter()
            while True:
                r = await client.post(f"/restate/awakeables/{aw_id}/resolve", content=body(value))
                if r.status_code in (200, 202, 204):
                    break
                if r.status_code == 404 and time.perf_counter() - t0 < 2:
                    retries += 1  # resolve raced the awakeable's journal entry
                    await asyncio.sleep(0.005)
                    continue
                attach.cancel()
                raise BenchError(f"resolve -> {r.status_code} {r.text[:200]}")
            t1 = time.perf_counter()
            res = await attach
            t2 = time.perf_counter()
            if res.json() != value:
                raise AssertionError(f"Waiter/wait returned {res.text[:100]!r}, want {value!r}")
            if measure:
                lat.append(t2 - t0)
                resolve_lat.append(t1 - t0)

        for i in range(3):  # warm up
            await one(-1 - i, measure=False)
        with Meter(rt) as meter:
            for i in range(total):
                try:
                    await one(i, measure=True)
                except Exception as e:
                    errors.add(describe(e))
        m = {
            **latency_metrics("", lat),
            **latency_metrics("resolve_", resolve_lat),
            "calls": total,
            "ok": len(lat),
            "resolve_404_retries": retries,
            **meter.metrics(),
        }
        return Outcome(metrics=m, errors=errors.lines())
