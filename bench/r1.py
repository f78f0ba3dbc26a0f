"""R1: 300 invocations of ``Recovery.twenty`` (20 steps, a 50 ms durable sleep between
steps; each step body appends "inv,step" to BENCH_STEP_FILE with fsync, and the handler
appends "inv,step,passed" once it got past the step's await).

Two runs on fresh stores:
- no crash: send all, attach all; first send -> all done;
- crash: send all; when half of all step bodies have run, SIGKILL the runtime (alone: a
  worker that outlives it by 2 s is killed too and reported); start a new runtime on the
  same store; attach all; restart -> all done.

Figures: restart -> all done; time lost to the crash = (first send -> kill) + (restart ->
all done) - no-crash time (the downtime between kill and restart is left out); step
bodies run more than once (duplicate lines), and among them those whose step had
provably been committed before the kill (before the kill the handler had got past it, or
a later step of the same invocation had run): these break the durability rule, in-flight
ones do not.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from .harness import (
    BenchError,
    ErrorLog,
    Meter,
    Outcome,
    Runtime,
    Settings,
    closed_loop,
    describe,
    make_client,
    send,
    wait_result,
    workspace,
)

STEPS = 20
SEND_CONCURRENCY = 32


def _read_lines(path: Path, upto: int | None = None, kind: int = 2) -> list[tuple[int, int]]:
    """(inv, step) of the step-body lines (kind=2: "inv,step") or of the handler's
    "got past the step" lines (kind=3: "inv,step,passed")."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    if upto is not None:
        data = data[:upto]
    out = []
    for ln in data.decode(errors="replace").splitlines():
        parts = ln.strip().split(",")
        if len(parts) == kind and parts[0].lstrip("-").isdigit() and parts[1].isdigit():
            out.append((int(parts[0]), int(parts[1])))
    return out


def _read_steps(path: Path, upto: int | None = None) -> list[tuple[int, int]]:
    return _read_lines(path, upto, 2)


async def _send_all(client, total: int, errors: ErrorLog) -> tuple[dict[int, str], float]:
    ids: dict[int, str] = {}

    async def one(i: int) -> None:
        ids[i] = await send(client, "/Recovery/twenty", i)

    t_first = time.perf_counter()
    await closed_loop(total, SEND_CONCURRENCY, one, errors)
    return ids, t_first


async def _attach_all(client, ids: dict[int, str], errors: ErrorLog, timeout: float) -> int:
    deadline = time.perf_counter() + timeout
    ok = 0

    async def one(inv: str) -> None:
        nonlocal ok
        try:
            r = await wait_result(client, inv, deadline=deadline)
            if r.json() != STEPS:
                raise AssertionError(f"Recovery/twenty returned {r.text[:100]!r}")
            ok += 1
        except Exception as e:
            errors.add(describe(e))

    await asyncio.gather(*(one(inv) for inv in ids.values()))
    return ok


async def _no_crash(settings: Settings, total: int, out: Outcome) -> float:
    async with workspace(settings, "R1-nocrash") as wd:
        step_file = wd / "steps.txt"
        rt = Runtime(wd, env={"BENCH_STEP_FILE": str(step_file)}, name="nocrash")
        try:
            await rt.start()
            errors = ErrorLog()
            async with make_client(rt.url, SEND_CONCURRENCY + total, settings.client) as client:
                with Meter(rt) as meter:
                    ids, t_first = await _send_all(client, total, errors)
                    ok = await _attach_all(client, ids, errors, timeout=300)
                    t_done = time.perf_counter()
        finally:
            rt.stop()
        counts = Counter(_read_steps(step_file))
        out.metrics.update(
            {
                "nocrash_s": t_done - t_first,
                "nocrash_ok": ok,
                "nocrash_dups": sum(c - 1 for c in counts.values()),
            }
        )
        out.metrics["gen_cpu_s"] = out.metrics.get("gen_cpu_s", 0.0) + meter.client_cpu
        out.errors += errors.lines("no crash: ")
        return t_done - t_first


async def _crash(settings: Settings, total: int, nocrash_s: float, out: Outcome) -> None:
    async with workspace(settings, "R1-crash") as wd:
        step_file = wd / "steps.txt"
        env = {"BENCH_STEP_FILE": str(step_file)}
        errors = ErrorLog()
        first = Runtime(wd, env=env, name="before-crash")
        second = Runtime(wd, store=first.store, env=env, name="after-restart")
        try:
            await first.start()
            async with make_client(first.url, SEND_CONCURRENCY, settings.client) as client:
                with Meter(first) as m1:
                    ids, t_first = await _send_all(client, total, errors)
                    half = total * STEPS // 2
                    deadline = time.perf_counter() + 300
                    while len(set(_read_steps(step_file))) < half:
                        if not first.alive():
                            raise BenchError("runtime died before the kill:\n" + first.log_tail())
                        if time.perf_counter() > deadline:
                            raise BenchError(f"fewer than {half} steps ran in 300 s")
                        await asyncio.sleep(0.01)
                    kill_offset = step_file.stat().st_size
                    t_kill = time.perf_counter()
                    leftovers = first.kill9()
            if leftovers:
                out.notes.append(f"worker outlived the runtime's kill -9 by 2 s (pids {leftovers})")
            t_restart = time.perf_counter()
            await second.start()
            async with make_client(second.url, total + 4, settings.client) as client:
                with Meter(second) as m2:
                    ok = await _attach_all(client, ids, errors, timeout=300)
                    t_done = time.perf_counter()
        finally:
            first.stop()
            second.stop()

        lines = _read_steps(step_file)
        counts = Counter(lines)
        before = _read_steps(step_file, upto=kill_offset)
        # a step is provably committed before the kill when, before the kill, the handler
        # got past it (a "passed" line) or a later step of that invocation ran
        committed: dict[int, int] = {}
        for inv, step in _read_lines(step_file, kill_offset, 3):
            committed[inv] = max(committed.get(inv, -1), step)
        for inv, step in before:
            committed[inv] = max(committed.get(inv, -1), step - 1)
        dups = {k: c - 1 for k, c in counts.items() if c > 1}
        committed_rerun = sum(
            n for (inv, step), n in dups.items() if step <= committed.get(inv, -1)
        )
        missing = total * STEPS - len(counts)
        restart_to_done = t_done - t_restart
        out.metrics.update(
            {
                "calls": total,
                "ok": ok,
                "restart_to_done_s": restart_to_done,
                "restart_ready_s": second.ready_s,
                "downtime_s": t_restart - t_kill,
                "before_kill_s": t_kill - t_first,
                "lost_s": (t_kill - t_first) + restart_to_done - nocrash_s,
                "steps_before_kill": len(before),
                "reexecuted": sum(dups.values()),
                "committed_rerun": committed_rerun,
                "missing_steps": missing,
            }
        )
        out.metrics["gen_cpu_s"] = out.metrics.get("gen_cpu_s", 0.0) + m1.client_cpu + m2.client_cpu
        if missing:
            out.errors.append(f"{missing} step bodies never ran")
        out.errors += errors.lines("crash: ")


async def run(settings: Settings) -> Outcome:
    total = settings.n(300, 100)
    out = Outcome()
    nocrash_s = await _no_crash(settings, total, out)
    await _crash(settings, total, nocrash_s, out)
    return out
