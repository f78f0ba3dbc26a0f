"""W2: VirtualObject ``Counter.add(1)`` (get + set of one state key) over 100 keys at
concurrency 32; ops/s, p50/p99; then every key's count read back with the shared
``Counter.get`` handler must equal the number of successful adds to that key."""

from __future__ import annotations

import asyncio
from collections import Counter

from .harness import (
    ErrorLog,
    Meter,
    Outcome,
    Settings,
    closed_loop,
    describe,
    latency_metrics,
    post_json,
    session,
    warm_up,
)

KEYS = 100
CONCURRENCY = 32


def _key(i: int) -> str:
    return f"k{i % KEYS:03d}"


async def run(settings: Settings) -> Outcome:
    total = settings.n(2000, 500)
    async with session(settings, "W2", CONCURRENCY) as s:
        # warm up on keys the measured phase does not use
        for j in range(5):
            await warm_up(s.client, f"/Counter/warm{j}/add", 1, n=1)
        errors = ErrorLog()
        adds: Counter[str] = Counter()

        async def one(i: int) -> None:
            await post_json(s.client, f"/Counter/{_key(i)}/add", 1)
            adds[_key(i)] += 1

        with Meter(s.rt) as meter:
            lat, wall = await closed_loop(total, CONCURRENCY, one, errors)

        # exactness: every key's final count equals its successful adds
        sem = asyncio.Semaphore(CONCURRENCY)
        wrong: list[str] = []

        async def check(k: str) -> None:
            async with sem:
                try:
                    got = await post_json(s.client, f"/Counter/{k}/get")
                except Exception as e:
                    wrong.append(f"{k}: get failed: {describe(e)}")
                    return
                if got != adds[k]:
                    wrong.append(f"{k}: count {got!r}, expected {adds[k]}")

        await asyncio.gather(*(check(_key(i)) for i in range(KEYS)))
        out = Outcome(
            metrics={
                **latency_metrics("", lat),
                "calls": total,
                "ok": len(lat),
                "ops_per_s": len(lat) / wall,
                "exact_keys": KEYS - len(wrong),
                "keys": KEYS,
                **meter.metrics(),
            },
            errors=errors.lines(),
        )
        if wrong:
            out.errors.append(f"{len(wrong)} keys wrong, e.g. " + "; ".join(wrong[:3]))
        return out
