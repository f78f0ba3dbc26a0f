"""W1a / W1b: a Service handler running 10 journaled ``ctx.run`` steps.

W1a: sequential calls (concurrency 1): p50/p99 latency; per step = p50 / 10.
W1b: calls at concurrency 32: invocations/s, steps/s, p50/p99, peak RSS of runtime +
worker sampled every 100 ms.
"""

from __future__ import annotations

from .harness import (
    MIB,
    ErrorLog,
    Meter,
    Outcome,
    RssSampler,
    Settings,
    closed_loop,
    latency_metrics,
    percentile,
    post_json,
    session,
    warm_up,
)

STEPS = 10
EXPECTED = sum(range(STEPS))


async def _one(client, i: int) -> None:
    out = await post_json(client, "/Steps/ten", i)
    if out != EXPECTED:
        raise AssertionError(f"Steps/ten returned {out!r}, expected {EXPECTED}")


async def _drive(settings: Settings, name: str, total: int, concurrency: int) -> Outcome:
    async with session(settings, name, concurrency) as s:
        await warm_up(s.client, "/Steps/ten", 0, n=max(5, concurrency))
        errors = ErrorLog()
        with RssSampler(s.rt) as rss, Meter(s.rt) as meter:
            lat, wall = await closed_loop(total, concurrency, lambda i: _one(s.client, i), errors)
        ok = len(lat)
        m = {
            **latency_metrics("", lat),
            "calls": total,
            "ok": ok,
            "inv_per_s": ok / wall,
            "steps_per_s": ok * STEPS / wall,
            "per_step_ms": percentile(lat, 50) * 1e3 / STEPS,
            "peak_rss_mib": rss.peak / MIB,
            "ready_s": s.rt.ready_s,
            **meter.metrics(),
        }
        return Outcome(metrics=m, errors=errors.lines())


async def run_w1a(settings: Settings) -> Outcome:
    return await _drive(settings, "W1a", settings.n(200, 50), 1)


async def run_w1b(settings: Settings) -> Outcome:
    return await _drive(settings, "W1b", settings.n(2000, 500), 32)
