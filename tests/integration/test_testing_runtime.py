"""durable.testing: the in-process runtime with a virtual clock (the real engine)."""

from __future__ import annotations

from datetime import timedelta

import durable
import durable.testing
import pytest
from durable import Context, ObjectContext, Service, TerminalError, VirtualObject

svc = Service("Steps")
calls: list[str] = []


@svc.handler()
async def three(ctx: Context, n: int) -> int:
    a = await ctx.run("a", lambda: calls.append("a") or n + 1)
    b = await ctx.run("b", lambda: calls.append("b") or a * 2)
    return b


@svc.handler()
async def nap(ctx: Context, days: int) -> str:
    await ctx.sleep(timedelta(days=days))
    return "rested"


@svc.handler()
async def bad(ctx: Context) -> None:
    raise TerminalError("nope", 422)


@svc.handler()
async def waits(ctx: Context) -> str:
    aw_id, fut = ctx.awakeable(type_hint=str)
    await ctx.run("publish", lambda: published.append(aw_id))
    return await fut


published: list[str] = []

counter = VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    v = (await ctx.get("count", type_hint=int) or 0) + n
    ctx.set("count", v)
    return v


@svc.handler()
async def caller(ctx: Context, key: str) -> int:
    await ctx.object_call(add, key, 2)
    return await ctx.object_call(add, key, 3)


SERVICES = [svc, counter]


@pytest.mark.timeout(20)
async def test_call_runs_steps_once():
    calls.clear()
    async with durable.testing.Runtime(SERVICES) as rt:
        assert await rt.call(three, 4) == 10
    assert calls == ["a", "b"]


@pytest.mark.timeout(20)
async def test_virtual_clock_fires_long_sleeps_at_once():
    async with durable.testing.Runtime(SERVICES) as rt:
        inv = await rt.send(nap, 3)
        await rt.settle()
        assert await rt.status(inv) == "suspended"
        await rt.advance(timedelta(days=2))
        assert await rt.status(inv) == "suspended"
        await rt.advance(timedelta(days=1, seconds=1))
        assert await rt.output(inv, nap) == "rested"


@pytest.mark.timeout(20)
async def test_terminal_error_reaches_the_caller():
    async with durable.testing.Runtime(SERVICES) as rt:
        with pytest.raises(TerminalError) as err:
            await rt.call(bad)
        assert err.value.status_code == 422 and err.value.message == "nope"


@pytest.mark.timeout(20)
async def test_awakeable_resolved_from_outside():
    published.clear()
    async with durable.testing.Runtime(SERVICES) as rt:
        inv = await rt.send(waits)
        await rt.settle()
        assert len(published) == 1
        await rt.resolve_awakeable(published[0], "done")
        assert await rt.output(inv, waits) == "done"


@pytest.mark.timeout(20)
async def test_object_state_and_calls():
    async with durable.testing.Runtime(SERVICES) as rt:
        assert await rt.call(caller, "k") == 5
        assert await rt.call(add, 1, key="k") == 6
        assert await rt.state("Counter", "k") == {"count": 6}


def test_importing_durable_loads_no_runtime_libraries():
    import subprocess
    import sys

    code = (
        "import sys, durable; bad = [m for m in sys.modules if m.split('.')[0] in "
        "('duckdb', 'starlette', 'textual', 'uvicorn', 'typer')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert durable.__version__
