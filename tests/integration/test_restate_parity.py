"""restate-sdk-python 1.2/1.3 behaviours on durable (issue 15, the SDK half), run on
the real engine in-process (durable.testing), with the app written against `restate`
(imported through durable.restate_alias)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import durable.testing
import msgspec
import pydantic
import pytest
from durable.exceptions import InvalidUsageError
from durable.restate_alias import restate_alias

pytestmark = pytest.mark.timeout(60)

with restate_alias():
    import restate
    from restate import Context, ObjectContext, RunOptions, Service, VirtualObject
    from restate.exceptions import RetryableError, TerminalError
    from restate.serde import BytesSerde, PydanticJsonSerde, Serde


class Item(pydantic.BaseModel):
    name: str
    qty: int


@dataclasses.dataclass
class Box:
    label: str
    weight: float


class Pkg(msgspec.Struct):
    code: str
    parts: list[int]


def make_item(name: str) -> Item:
    return Item(name=name, qty=len(name))


async def make_box(label: str) -> Box:
    return Box(label=label, weight=1.5)


def make_pkg(code: str) -> Pkg:
    return Pkg(code=code, parts=[1, 2])


svc = Service("Parity")


@svc.handler()
async def typed_runs(ctx: Context, name: str) -> str:
    # no type_hint: the action's return annotation types the result (sync and async)
    item = await ctx.run("item", make_item, args=(name,))
    box = await ctx.run_typed("box", make_box, RunOptions(), label=name)
    pkg = await ctx.run_typed("pkg", make_pkg, RunOptions(max_attempts=2), name)
    return f"{item.name}:{item.qty}/{box.label}:{box.weight}/{pkg.code}:{pkg.parts}"


@svc.handler()
async def msgspec_io(ctx: Context, pkg: Pkg) -> Pkg:
    return Pkg(code=pkg.code.upper(), parts=[*pkg.parts, len(pkg.parts)])


attempts: list[int] = []


def flaky() -> int:
    attempts.append(1)
    raise ValueError("down")


@svc.handler()
async def gives_up(ctx: Context) -> str:
    opts: RunOptions[int] = RunOptions(
        max_duration=timedelta(milliseconds=200), initial_retry_interval=timedelta(milliseconds=10)
    )
    try:
        await ctx.run_typed("flaky", flaky, opts)
    except TerminalError as e:
        return e.message
    return "no"


class Upper(Serde[str]):
    """A custom serde: a JSON string, upper-cased on the way in."""

    def serialize(self, obj: str | None) -> bytes:
        return json.dumps(obj).encode()

    def deserialize(self, buf: bytes) -> str | None:
        assert isinstance(buf, bytes)  # restate's contract: serdes get bytes
        return json.loads(buf).upper()


@svc.handler(input_serde=Upper(), output_serde=BytesSerde())
async def serdes(ctx: Context, text: str) -> bytes:
    stored = await ctx.run("echo", lambda: text + "!", serde=Upper())
    return json.dumps({"in": text, "run": stored}).encode()


@svc.handler(output_serde=PydanticJsonSerde(Item))
async def pydantic_out(ctx: Context, name: str) -> Item:
    return Item(name=name, qty=1)


@svc.handler()
async def bad_serde_output(ctx: Context) -> str:
    return await ctx.run("raw", lambda: b"\xff not json", serde=BytesSerde())


waiter = Service("Waiter")


@waiter.handler()
async def forever(ctx: Context) -> str:
    await ctx.sleep(timedelta(days=365))
    return "woke"


@svc.handler()
async def cancels_callee(ctx: Context) -> str:
    fut = ctx.service_call(forever, arg=None)
    callee = await fut.invocation_id()
    await fut.cancel_invocation()
    try:
        await fut
    except TerminalError as e:
        return f"{callee.startswith('inv_')}:{e.status_code}"
    return "not cancelled"


@svc.handler()
async def cancels_send(ctx: Context) -> str:
    handle = ctx.service_send(forever, arg=None)
    await handle.cancel_invocation()
    return await handle.invocation_id()


entered: list[str] = []


@contextlib.asynccontextmanager
async def tracing() -> AsyncIterator[None]:
    entered.append("in")
    yield
    entered.append("out")


managed = VirtualObject("Managed", invocation_context_managers=[tracing])


@managed.handler(kind="shared", inactivity_timeout=timedelta(minutes=1))
async def peek(ctx: ObjectContext) -> str:
    return ctx.key()


events: list[Any] = []


@svc.handler()
async def request_info(ctx: Context) -> list[Any]:
    req = ctx.request()
    events.append(req.attempt_finished_event)
    return [req.attempt, req.attempt_finished_event.is_set(), req.scope]


tries: list[int] = []


@svc.handler()
async def retry_later(ctx: Context) -> int:
    tries.append(1)
    if len(tries) == 1:
        raise RetryableError("not yet", retry_after=timedelta(hours=1))
    return len(tries)


SERVICES = [svc, waiter, managed]


async def test_run_result_typed_by_the_action_annotation() -> None:
    async with durable.testing.Runtime(SERVICES) as rt:
        assert await rt.call(typed_runs, "ab") == "ab:2/ab:1.5/ab:[1, 2]"


async def test_msgspec_struct_in_and_out() -> None:
    async with durable.testing.Runtime(SERVICES) as rt:
        out = await rt.call(msgspec_io, Pkg(code="x", parts=[7]))
        assert out == Pkg(code="X", parts=[7, 1])
        assert svc.handlers["msgspec_io"].info().input_schema["properties"]["code"] == {
            "type": "string"
        }


async def test_run_options_max_duration_gives_up_with_a_terminal_error() -> None:
    attempts.clear()
    async with durable.testing.Runtime(SERVICES) as rt:
        msg = await rt.call(gives_up)
    assert "ctx.run('flaky') failed after" in msg and "down" in msg
    assert len(attempts) >= 2


async def test_custom_and_bytes_serdes_on_handlers_and_run() -> None:
    async with durable.testing.Runtime(SERVICES) as rt:
        out = await rt.call(serdes, "hi")
        assert json.loads(out) == {"in": "HI", "run": "HI!"}
        assert await rt.call(pydantic_out, "n") == Item(name="n", qty=1)
        with pytest.raises(TerminalError, match="not UTF-8"):
            await rt.call(bad_serde_output)


async def test_cancel_invocation_on_call_future_and_send_handle() -> None:
    async with durable.testing.Runtime(SERVICES) as rt:
        assert await rt.call(cancels_callee) == "True:409"
        callee = await rt.call(cancels_send)
        await rt.settle()
        assert await rt.status(callee) == "cancelled"


async def test_invocation_context_managers_wrap_each_invocation() -> None:
    entered.clear()
    async with durable.testing.Runtime(SERVICES) as rt:
        assert await rt.call(peek, key="k1") == "k1"
    assert entered == ["in", "out"]
    assert managed.handlers["peek"].restate_options == {"inactivity_timeout": timedelta(minutes=1)}


def test_unknown_and_unsupported_keywords_fail_at_definition() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument.*colour"):
        Service("X", colour="red")
    s = Service("Y")
    with pytest.raises(TypeError, match="handler Y.h got unexpected keyword.*retries"):

        @s.handler(retries=3)
        async def h(ctx: Context) -> None: ...

    with pytest.warns(RuntimeWarning, match="accept='application/octet-stream' is not applied"):

        @s.handler(accept="application/octet-stream")
        async def h2(ctx: Context) -> None: ...

    with pytest.raises(InvalidUsageError, match="input_serde=42 is not a serde"):

        @s.handler(input_serde=42)
        async def h3(ctx: Context, x: Any) -> None: ...


def test_invocation_retry_policy_becomes_the_retry_policy() -> None:
    s = Service(
        "Z",
        invocation_retry_policy=restate.InvocationRetryPolicy(
            initial_interval=timedelta(seconds=1), max_attempts=3, exponentiation_factor=3.0
        ),
    )
    assert s.retry_policy is not None
    assert (s.retry_policy.initial_interval, s.retry_policy.max_attempts) == (
        timedelta(seconds=1),
        3,
    )
    assert s.retry_policy.factor == 3.0


async def test_request_has_restates_fields() -> None:
    events.clear()
    async with durable.testing.Runtime(SERVICES) as rt:
        assert await rt.call(request_info) == [1, False, None]
        await rt.settle()
    assert events[0].is_set()  # the attempt ended
    await events[0].wait()


async def test_retryable_error_retry_after_sets_the_next_delay() -> None:
    tries.clear()
    async with durable.testing.Runtime(SERVICES) as rt:
        inv = await rt.send(retry_later)
        await rt.settle()
        assert await rt.status(inv) == "backing-off"
        await rt.advance(timedelta(minutes=59))  # the policy's 100 ms would have fired
        assert len(tries) == 1
        await rt.advance(timedelta(minutes=2))
        assert await rt.output(inv, retry_later) == 2
