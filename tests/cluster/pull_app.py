"""The app of the `durable pull` tests, written the Restate way (``import restate``).

One file, two engines: the real restate-sdk serves it to a real Restate (the cluster),
and ``durable dev`` serves a copy of it (the local code a pulled invocation replays
against). ``PULL_PID_FILE``, when set, gets the PID of the process running a handler's
body (only ``durable dev``'s environment sets it): under ``--inline`` that is the runtime.
"""

from __future__ import annotations

import os
from datetime import timedelta

import restate
from restate import Context, ObjectContext, Service, TerminalError, VirtualObject

greeter = Service("Greeter")
counter = VirtualObject("Counter")
forgetful = Service("Forgetful")  # the tests set its journal retention to 0 on the cluster


def _note_pid() -> None:
    path = os.environ.get("PULL_PID_FILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")


@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    _note_pid()
    current = await ctx.get("total") or 0
    doubled = await ctx.run("double", lambda: n * 2)
    await ctx.sleep(timedelta(milliseconds=10))
    total = current + doubled
    ctx.set("total", total)
    return total


@counter.handler()
async def refuse(ctx: ObjectContext, why: str) -> str:
    await ctx.run("check", lambda: why)
    raise TerminalError(f"refused: {why}", status_code=400)


@counter.handler()
async def slow(ctx: ObjectContext) -> str:
    await ctx.run("before", lambda: "ok")
    await ctx.sleep(timedelta(hours=1))
    return "woke"


@counter.handler()
async def approve(ctx: ObjectContext, who: str) -> str:
    aw_id, answer = ctx.awakeable()
    await ctx.run("publish", lambda: aw_id)  # where a person finds the id
    said = await answer
    ctx.set("approved", said)
    return f"{who}: {said}"


@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    n = await ctx.object_call(add, key=name, arg=1)
    loud = await ctx.run("shout", lambda: name.upper())
    return f"hello {loud} {n}"


@forgetful.handler()
async def hello(ctx: Context, name: str) -> str:
    return await ctx.run("hello", lambda: f"hello {name}")


app = restate.app([greeter, counter, forgetful])
