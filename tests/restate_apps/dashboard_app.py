"""A real restate-sdk app for the dashboard's and the TUI's cluster tests.

Served by hypercorn with the real ``restate`` module (``tests/restate_server.py``'s
``hypercorn_app``). Services that wait suspend after one second of inactivity, so an
awakeable or a promise they wait on is listed as pending at once (Restate's default is
a minute). ``Kitchen.tour`` writes a run, a sleep, a call, a one-way call and an
awakeable; ``wait`` waits for an awakeable resolved from outside; ``stuck`` retries until
someone acts; ``steps`` is three runs to restart from; ``Pantry`` has state; ``Signup``
waits on a promise.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import restate
from restate import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    RunOptions,
    Service,
    VirtualObject,
    Workflow,
    WorkflowContext,
)

QUICK = timedelta(seconds=1)

helper = Service("Helper")


@helper.handler()
async def echo(ctx: Context, value: Any) -> Any:
    return value


kitchen = Service("Kitchen", inactivity_timeout=QUICK)


@kitchen.handler()
async def tour(ctx: Context, n: int) -> dict[str, Any]:
    doubled = await ctx.run_typed("double", lambda: n * 2)
    await ctx.sleep(timedelta(milliseconds=10))
    called = await ctx.service_call(echo, {"called": n})
    ctx.service_send(echo, {"sent": n})
    awk_id, awk = ctx.awakeable()
    ctx.resolve_awakeable(awk_id, {"ok": n})
    resolved = await awk
    return {"doubled": doubled, "called": called, "resolved": resolved}


@kitchen.handler()
async def wait(ctx: Context, label: str) -> Any:
    first = await ctx.run_typed("first", lambda: f"{label}-1")
    awk_id, awk = ctx.awakeable()
    await ctx.run_typed("tell", lambda: awk_id)
    return {"first": first, "value": await awk}


@kitchen.handler()
async def stuck(ctx: Context, label: str) -> str:
    await ctx.run_typed("step", lambda: label)

    def cold() -> str:
        raise RuntimeError(f"the oven is cold ({label})")

    options: RunOptions[str] = RunOptions(
        max_attempts=1000, initial_retry_interval=timedelta(milliseconds=500)
    )
    return await ctx.run_typed("oven", cold, options)


@kitchen.handler()
async def steps(ctx: Context, n: int) -> int:
    a = await ctx.run_typed("one", lambda: n + 1)
    b = await ctx.run_typed("two", lambda: a + 1)
    return await ctx.run_typed("three", lambda: b + 1)


pantry = VirtualObject("Pantry")


@pantry.handler()
async def stock(ctx: ObjectContext, item: str) -> int:
    count = await ctx.get("count", type_hint=int) or 0
    ctx.set("count", count + 1)
    ctx.set("last", item)
    return count + 1


@pantry.handler(kind="shared")
async def look(ctx: ObjectSharedContext) -> Any:
    return await ctx.get("last", type_hint=str)


signup = Workflow("Signup", inactivity_timeout=QUICK)


@signup.main()
async def run(ctx: WorkflowContext, email: str) -> str:
    code = await ctx.promise("code", type_hint=str).value()
    return f"{email} confirmed with {code}"


app = restate.app([helper, kitchen, pantry, signup])
