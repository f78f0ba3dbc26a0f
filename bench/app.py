"""The app the benchmarks run under ``durable dev``.

Env vars read at call time:
  BENCH_AWAKE_FILE  Waiter.wait appends each awakeable id to it (W4).
  BENCH_STEP_FILE   Recovery.twenty appends "inv,step" per step body, fsynced, and
                    "inv,step,passed" each time the handler gets past a step (R1).
"""

from __future__ import annotations

import os
from datetime import timedelta

from durable import Context, ObjectContext, ObjectSharedContext, Service, VirtualObject

# --- RC1 and the soak's recovery probe: the lightest call the worker serves ----------

pinger = Service("Ping")


@pinger.handler()
async def ping(ctx: Context, n: int) -> int:
    return n


# --- W1a / W1b: ten journaled steps --------------------------------------------------

steps = Service("Steps")


@steps.handler()
async def ten(ctx: Context, n: int) -> int:
    total = 0
    for i in range(10):
        total += await ctx.run(f"step{i}", lambda i=i: i)
    return total


# --- W2: a counter object (get + set of one state key) -------------------------------

counter = VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    v = (await ctx.get("count", type_hint=int) or 0) + n
    ctx.set("count", v)
    return v


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count", type_hint=int) or 0


# --- W3 / W5: a durable sleep --------------------------------------------------------

sleeper = Service("Sleeper")


@sleeper.handler()
async def sleep(ctx: Context, ms: int) -> int:
    await ctx.sleep(timedelta(milliseconds=ms))
    return ms


# --- W4: an awakeable resolved over HTTP ---------------------------------------------


def _publish(aw_id: str) -> str:
    path = os.environ.get("BENCH_AWAKE_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(aw_id + "\n")
            f.flush()
    return aw_id


waiter = Service("Waiter")


@waiter.handler()
async def wait(ctx: Context):
    aw_id, fut = ctx.awakeable()
    await ctx.run("publish", _publish, aw_id)
    return await fut


# --- R1: 20 steps with a 50 ms durable sleep between them ----------------------------


def _record_step(inv: int, step: int) -> int:
    path = os.environ.get("BENCH_STEP_FILE")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{inv},{step}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    return step


def _mark_passed(inv: int, step: int) -> None:
    """Not journaled (runs again on replay): "inv,step,passed" says the handler got past
    the step's await, so by the runtime's rule the step's result was committed."""
    path = os.environ.get("BENCH_STEP_FILE")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{inv},{step},passed\n".encode())
        finally:
            os.close(fd)


recovery = Service("Recovery")


@recovery.handler()
async def twenty(ctx: Context, n: int) -> int:
    done = 0
    for i in range(20):
        if i:
            await ctx.sleep(timedelta(milliseconds=50))
        await ctx.run(f"step{i}", _record_step, n, i)
        _mark_passed(n, i)
        done += 1
    return done
