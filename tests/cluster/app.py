"""A real restate-sdk app whose handlers produce every journal command Restate records.

Served by hypercorn with the real ``restate`` module (never durable's alias) and
registered with a real restate-server by ``conftest.py``. ``Kitchen.everything`` writes
one of each command a service can; ``Pantry`` (an object) the state commands;
``Signup`` (a workflow) the promise commands; the others wait or fail so the admin
actions have something to act on.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import restate
from restate import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    RunOptions,
    Service,
    TerminalError,
    VirtualObject,
    Workflow,
    WorkflowContext,
    WorkflowSharedContext,
)

helper = Service("Helper")


@helper.handler()
async def echo(ctx: Context, value: Any) -> Any:
    return value


@helper.handler()
async def later(ctx: Context, value: Any) -> Any:
    return value


# a waiting handler suspends after a second (Restate's default: a minute)
QUICK = timedelta(seconds=1)

kitchen = Service("Kitchen", inactivity_timeout=QUICK)


@kitchen.handler()
async def everything(ctx: Context, n: int) -> dict[str, Any]:
    doubled = await ctx.run_typed("double", lambda: n * 2)
    await ctx.sleep(timedelta(milliseconds=10))
    called = await ctx.service_call(echo, {"called": n})
    ctx.service_send(echo, {"sent": n})
    far = ctx.service_send(later, {"delayed": n}, send_delay=timedelta(hours=1))
    far_id = await far.invocation_id()
    ctx.cancel_invocation(far_id)
    awk_id, awk = ctx.awakeable()
    ctx.resolve_awakeable(awk_id, {"ok": n})
    resolved = await awk
    bad_id, bad = ctx.awakeable()
    ctx.reject_awakeable(bad_id, "no thanks", 409)
    try:
        await bad
        rejected = None
    except TerminalError as e:
        rejected = e.message
    await ctx.time()
    return {"doubled": doubled, "called": called, "resolved": resolved, "rejected": rejected}


@kitchen.handler()
async def refuse(ctx: Context, why: str) -> None:
    raise TerminalError(f"refused: {why}", 418)


@kitchen.handler()
async def wait(ctx: Context, label: str) -> Any:
    """Waits for an awakeable resolved from outside (by the CLI)."""
    first = await ctx.run_typed("first", lambda: f"{label}-1")
    awk_id, awk = ctx.awakeable()
    await ctx.run_typed("tell", lambda: awk_id)
    value = await awk
    return {"first": first, "value": value}


@kitchen.handler()
async def stuck(ctx: Context, label: str) -> str:
    """Fails with a retryable error until paused, killed or cancelled."""
    await ctx.run_typed("step", lambda: label)

    def boom() -> str:
        raise RuntimeError(f"the oven is cold ({label})")

    return await ctx.run_typed(
        "oven", boom, RunOptions(max_attempts=1000, initial_retry_interval=timedelta(seconds=1))
    )


@kitchen.handler()
async def steps(ctx: Context, n: int) -> int:
    """Three runs, then done: a completed invocation to restart from an entry."""
    a = await ctx.run_typed("one", lambda: n + 1)
    b = await ctx.run_typed("two", lambda: a + 1)
    return await ctx.run_typed("three", lambda: b + 1)


@kitchen.handler()
async def stamps(ctx: Context) -> list[float]:
    """Two clock readings in runs: a restart shows which it kept and which it re-ran."""
    first = await ctx.run_typed("one", clock)
    second = await ctx.run_typed("two", clock)
    return [first, second]


def clock() -> float:
    return time.time()


pantry = VirtualObject("Pantry", inactivity_timeout=QUICK)


@pantry.handler()
async def stock(ctx: ObjectContext, item: str) -> dict[str, Any]:
    count = await ctx.get("count", type_hint=int) or 0
    ctx.set("count", count + 1)
    ctx.set("last", item)
    ctx.set("scratch", "x")
    ctx.clear("scratch")
    keys = await ctx.state_keys()
    return {"count": count + 1, "keys": sorted(keys)}


@pantry.handler()
async def empty(ctx: ObjectContext) -> None:
    ctx.clear_all()


@pantry.handler(kind="shared")
async def look(ctx: ObjectSharedContext) -> Any:
    return await ctx.get("last", type_hint=str)


signup = Workflow("Signup", inactivity_timeout=QUICK)


@signup.main()
async def run(ctx: WorkflowContext, email: str) -> str:
    ctx.set("email", email)
    code = await ctx.promise("code", type_hint=str).value()
    return f"{email} confirmed with {code}"


@signup.handler()
async def confirm(ctx: WorkflowSharedContext, code: str) -> None:
    await ctx.promise("code", type_hint=str).resolve(code)


@signup.handler()
async def peek(ctx: WorkflowSharedContext) -> Any:
    return await ctx.promise("code", type_hint=str).peek()


app = restate.app([helper, kitchen, pantry, signup])
