"""The app the soak (``python -m bench soak``) runs under ``durable dev``.

Every handler's result follows from its input, so the soak checks each acknowledged
call's output. Env vars read at call time:
  SOAK_STEP_FILE   each ``ctx.run`` body of SoakSteps appends "op,step" (fsynced); the
                   handler appends "op,step,passed" once past the step's await
  SOAK_AWAKE_FILE  SoakFlow.awaiting appends "op awakeable-id" (fsynced)
"""

from __future__ import annotations

import os
from datetime import timedelta

from durable import Context, ObjectContext, ObjectSharedContext, Service, VirtualObject

STEPS = 3


def _append(var: str, line: str, sync: bool) -> None:
    path = os.environ.get(var)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _step(op: int, i: int, n: int) -> int:
    _append("SOAK_STEP_FILE", f"{op},{i}", sync=True)
    return n * 10 + i


def expected_steps(n: int) -> int:
    return sum(n * 10 + i for i in range(STEPS))


soak_steps = Service("SoakSteps")


@soak_steps.handler()
async def steps(ctx: Context, req: dict) -> int:
    op, n = req["op"], req["n"]
    total = 0
    for i in range(STEPS):
        if i:
            await ctx.sleep(timedelta(milliseconds=5))
        total += await ctx.run(f"step{i}", _step, op, i, n)
        # not journaled: runs again on replay; past the await, the step was committed
        _append("SOAK_STEP_FILE", f"{op},{i},passed", sync=False)
    return total


soak_counter = VirtualObject("SoakCounter")


@soak_counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    v = (await ctx.get("count", type_hint=int) or 0) + n
    ctx.set("count", v)
    return v


@soak_counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count", type_hint=int) or 0


def _publish(op: int, aw_id: str) -> str:
    _append("SOAK_AWAKE_FILE", f"{op} {aw_id}", sync=True)
    return aw_id


soak_flow = Service("SoakFlow")


@soak_flow.handler()
async def sleepy(ctx: Context, req: dict) -> int:
    await ctx.sleep(timedelta(milliseconds=req["ms"]))
    return req["op"] * 2


@soak_flow.handler()
async def awaiting(ctx: Context, req: dict) -> int:
    aw_id, fut = ctx.awakeable(type_hint=int)
    await ctx.run("publish", _publish, req["op"], aw_id)
    return await fut + 1


@soak_flow.handler()
async def chain(ctx: Context, req: dict) -> int:
    """A call to SoakSteps and one to SoakCounter/{key}/add: both exactly once."""
    total = await ctx.service_call(steps, {"op": req["op"], "n": req["n"]})
    await ctx.object_call(add, key=req["key"], arg=1)
    return total


@soak_flow.handler()
async def ping(ctx: Context, n: int) -> int:
    return n
