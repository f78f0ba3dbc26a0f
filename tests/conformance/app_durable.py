"""The conformance app's twin written the durable way (``import durable``): the same
services, handlers and behaviour as ``app.py``, line for line.

``durable dev`` serves it as any durable app, and ``durable serve`` serves it to a real
Restate server through the real restate-sdk: the same scenarios play against both.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import durable
from durable import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    Service,
    TerminalError,
    VirtualObject,
    Workflow,
    WorkflowContext,
    WorkflowSharedContext,
)
from pydantic import BaseModel

ATTEMPTS: dict[str, int] = {}

# --------------------------------------------------------------------- a service

echo = Service("Echo")


class Person(BaseModel):
    name: str
    age: int


@echo.handler()
async def same(ctx: Context, value: Any) -> Any:
    return value


@echo.handler()
async def nothing(ctx: Context) -> None:
    return None


@echo.handler()
async def hello(ctx: Context) -> str:
    return "hello"


@echo.handler()
async def greet(ctx: Context, person: Person) -> str:
    return f"{person.name} is {person.age}"


def _birthday(person: Person) -> Person:
    return Person(name=person.name, age=person.age + 1)


@echo.handler()
async def birthday(ctx: Context, person: Person) -> Person:
    """A Pydantic model in, through ctx.run (typed by the action's annotation), and out."""
    older = await ctx.run("birthday", _birthday, args=(person,))
    return Person(name=older.name.upper(), age=older.age)


@echo.handler()
async def together(ctx: Context, n: int) -> list[int]:
    """Three calls at once, awaited together."""
    calls = [ctx.service_call(journaled, arg=i) for i in range(n)]
    await durable.gather(*calls)
    return [await c for c in calls]


@echo.handler()
async def first_of(ctx: Context, key: str) -> str:
    """An awakeable raced against a short sleep: the sleep wins."""
    _, promise = ctx.awakeable(type_hint=str)
    done = await durable.select(signal=promise, timeout=ctx.sleep(timedelta(milliseconds=100)))
    match done:
        case ["signal", value]:
            return f"signal {value}"
        case ["timeout", _]:
            return "timed out"
    return "neither"


@echo.handler()
async def wakes(ctx: Context, key: str) -> str:
    """Resolve the awakeable an object waits on, from a handler."""
    awk_id = await ctx.object_call(awakeable_id, key=key, arg=None)
    if awk_id is None:
        raise TerminalError("nothing waits", status_code=404)
    ctx.resolve_awakeable(awk_id, "from a handler")
    return "woken"


@echo.handler()
async def fail(ctx: Context, message: str) -> str:
    raise TerminalError(message, status_code=418)


@echo.handler()
async def journaled(ctx: Context, value: int) -> int:
    doubled = await ctx.run("double", lambda: value * 2)
    return doubled + 1


def _flaky(label: str, fail_times: int) -> int:
    ATTEMPTS[label] = ATTEMPTS.get(label, 0) + 1
    if ATTEMPTS[label] <= fail_times:
        raise RuntimeError(f"attempt {ATTEMPTS[label]} failed")
    return ATTEMPTS[label]


@echo.handler()
async def retried(ctx: Context, name: str) -> int:
    opts: durable.RunOptions[int] = durable.RunOptions(
        max_attempts=5, initial_retry_interval=timedelta(milliseconds=10)
    )
    return await ctx.run_typed("flaky", _flaky, opts, label=name, fail_times=2)


@echo.handler()
async def gives_up(ctx: Context, name: str) -> int:
    opts: durable.RunOptions[int] = durable.RunOptions(
        max_attempts=2, initial_retry_interval=timedelta(milliseconds=10)
    )
    try:
        return await ctx.run_typed("always", _flaky, opts, label=name, fail_times=100)
    except TerminalError as e:
        raise TerminalError(f"gave up after {ATTEMPTS[name]} attempts", status_code=503) from e


@echo.handler()
async def naps(ctx: Context, ms: int) -> str:
    await ctx.sleep(timedelta(milliseconds=ms))
    return f"slept {ms} ms"


@echo.handler()
async def calls(ctx: Context, value: Any) -> dict[str, Any]:
    got = await ctx.service_call(same, arg=value)
    return {"got": got}


@echo.handler()
async def catches(ctx: Context, message: str) -> str:
    try:
        await ctx.service_call(fail, arg=message)
    except TerminalError as e:
        return f"caught {e.status_code}: {e.message}"
    return "not failed"


@echo.handler()
async def sends_later(ctx: Context, key: str) -> str:
    ctx.object_send(add, key=key, arg=5, send_delay=timedelta(milliseconds=1500))
    return "sent"


@echo.handler()
async def cancels_its_callee(ctx: Context, key: str) -> str:
    handle = ctx.object_send(wait_for_signal, key=key, arg=None)
    await ctx.sleep(timedelta(seconds=1))  # until the callee waits on its awakeable
    ctx.cancel_invocation(await handle.invocation_id())
    return "cancel sent"


# ------------------------------------------------------------ a virtual object

counter = VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> int:
    total = (await ctx.get("total", type_hint=int) or 0) + delta
    ctx.set("total", total)
    return total


@counter.handler(kind="shared")
async def total(ctx: ObjectSharedContext) -> int:
    return await ctx.get("total", type_hint=int) or 0


@counter.handler()
async def reset(ctx: ObjectContext) -> None:
    ctx.clear("total")


@counter.handler()
async def keys(ctx: ObjectContext) -> list[str]:
    ctx.set("a", 1)
    ctx.set("b", 2)
    return sorted(await ctx.state_keys())


@counter.handler()
async def clear_everything(ctx: ObjectContext) -> list[str]:
    ctx.clear_all()
    return sorted(await ctx.state_keys())


@counter.handler()
async def wait_for_signal(ctx: ObjectContext) -> str:
    """Hold the key until its awakeable is resolved; the id is kept in state."""
    awk_id, promise = ctx.awakeable(type_hint=str)
    ctx.set("awakeable", awk_id)
    try:
        got = await promise
    except TerminalError as e:
        ctx.set("compensated", True)  # a saga's undo step, then fail as asked
        raise e
    ctx.clear("awakeable")
    return f"signal: {got}"


@counter.handler(kind="shared")
async def awakeable_id(ctx: ObjectSharedContext) -> str | None:
    return await ctx.get("awakeable", type_hint=str)


@counter.handler(kind="shared")
async def compensated(ctx: ObjectSharedContext) -> bool:
    return await ctx.get("compensated", type_hint=bool) or False


# ------------------------------------------------------------------ a workflow

signup = Workflow("Signup")


@signup.main()
async def run(ctx: WorkflowContext, email: str) -> str:
    ctx.set("stage", "waiting")
    code = await ctx.promise("code", type_hint=str).value()
    ctx.set("stage", "done")
    return f"{email} confirmed with {code}"


@signup.handler()
async def confirm(ctx: WorkflowSharedContext, code: str) -> None:
    await ctx.promise("code", type_hint=str).resolve(code)


@signup.handler()
async def deny(ctx: WorkflowSharedContext, why: str) -> None:
    await ctx.promise("code", type_hint=str).reject(why)


@signup.handler()
async def peek(ctx: WorkflowSharedContext) -> str | None:
    return await ctx.promise("code", type_hint=str).peek()


@signup.handler()
async def stage(ctx: WorkflowSharedContext) -> str | None:
    return await ctx.get("stage", type_hint=str)


@echo.handler()
async def runs_a_workflow_twice(ctx: Context, wf_id: str) -> list[str]:
    await ctx.workflow_call(confirm, key=wf_id, arg="7")
    first = await ctx.workflow_call(run, key=wf_id, arg="f@x")
    try:
        second = await ctx.workflow_call(run, key=wf_id, arg="g@x")
    except TerminalError as e:
        second = f"{e.status_code}: {e.message}"
    return [first, second]


app = durable.app([echo, counter, signup])
