"""The app `durable serve` serves in tests/serve: written with `import durable` only, one
handler per part of the Context API, each returning what it saw (module-level dicts count
attempts: one serve process per module)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import durable
from durable import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    RetryPolicy,
    RunOptions,
    Service,
    TerminalError,
    VirtualObject,
    Workflow,
    WorkflowContext,
    WorkflowSharedContext,
)
from durable.exceptions import CancelledError, DurableTimeoutError, RetryableError

ATTEMPTS: dict[str, int] = {}
log = durable.getLogger("serve_app")


@dataclass
class Item:
    name: str
    qty: int = 1


def _count(key: str) -> int:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    return ATTEMPTS[key]


# --------------------------------------------------------------------- a service

tools = Service("Tools", retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=20)))


@tools.handler()
async def echo(ctx: Context, item: Item) -> Item:
    return Item(item.name.upper(), item.qty + 1)


class TextSerde:
    """Plain text both ways (not JSON: Restate carries bytes)."""

    def serialize(self, value: str) -> bytes:
        return value.encode()

    def deserialize(self, data: bytes) -> str:
        return data.decode()


@tools.handler(
    input_serde=TextSerde(),
    output_serde=TextSerde(),
    accept="text/plain",
    content_type="text/plain",
)
async def shout(ctx: Context, s: str) -> str:
    return s.upper() + "!"


@tools.handler()
async def nothing(ctx: Context) -> None:
    return None


@tools.handler()
async def fail(ctx: Context, code: int) -> str:
    raise TerminalError(f"failed with {code}", code)


@tools.handler(retry_policy=RetryPolicy(max_attempts=None))
async def retried(ctx: Context, key: str) -> int:
    n = _count("retried:" + key)
    if n < 3:
        raise RetryableError(f"attempt {n}", retry_after=timedelta(milliseconds=10))
    return n


def _thread_name() -> str:
    return threading.current_thread().name


def _make_item(name: str) -> Item:
    return Item(name, 7)


@tools.handler()
async def runs(ctx: Context, key: str) -> dict[str, Any]:
    thread = await ctx.run("thread", _thread_name)
    item = await ctx.run("typed", _make_item, "box")

    async def doubled(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    two = await ctx.run("async", doubled, 21)

    def flaky() -> str:
        if _count("flaky:" + key) < 3:
            raise ValueError("not yet")
        return "ok"

    opts: RunOptions[str] = RunOptions(
        max_attempts=5, initial_retry_interval=timedelta(milliseconds=10)
    )
    flaky_result = await ctx.run_typed("flaky", flaky, opts)

    def always() -> str:
        raise ValueError("never works")

    try:
        await ctx.run("doomed", always, max_attempts=2)
        doomed = "no error"
    except TerminalError as e:
        doomed = f"{type(e).__name__}:{e.status_code}"

    def refuses() -> str:
        raise TerminalError("refused in the body", 422)

    try:
        await ctx.run("refuses", refuses)
        refused = "no error"
    except TerminalError as e:
        refused = f"{e.status_code}:{e.message}"
    kw = await ctx.run("kwargs", lambda a, b=0: a + b, args=(1,), b=2)
    req = ctx.request()
    return {
        "thread_is_main": thread == threading.main_thread().name,
        "item": [type(item).__name__, item.name, item.qty],
        "two": two,
        "flaky": [flaky_result, ATTEMPTS["flaky:" + key]],
        "doomed": doomed,
        "refused": refused,
        "kw": kw,
        "random": 0 <= ctx.random().random() < 1,
        "uuid": len(str(ctx.uuid())),
        "time": await ctx.time() > 1.7e9,
        "request": [req.id.startswith("inv_"), "content-type" in req.headers, req.body.decode()],
        "request_repr": repr(req).startswith("Request(id='inv_") and req == ctx.request(),
    }


@tools.handler()
async def attempt(ctx: Context) -> int:
    return ctx.request().attempt


@tools.handler()
async def scope(ctx: Context) -> str:
    ctx.scope("x")
    return "unreachable"


@tools.handler()
async def calls(ctx: Context, key: str) -> dict[str, Any]:
    item = await ctx.service_call(echo, Item("a", 1))
    total = await ctx.object_call(add, key=key, arg=5)
    raw = await ctx.generic_call("Tools", "echo", b'{"name":"raw","qty":2}')
    generic = await ctx.generic_call("Counter", "get", key=key)
    try:
        await ctx.service_call(fail, 418)
        failed = "no error"
    except TerminalError as e:
        failed = f"{type(e).__name__}:{e.status_code}:{e.message}"
    shouted = await ctx.service_call(shout, "abc")
    seen = await ctx.service_call(header, headers={"x-durable-test": "yes"})
    f = ctx.service_call(nothing)
    callee = await f.invocation_id()
    await f
    ctx.object_send(add, key=key, arg=100, send_delay=timedelta(milliseconds=200))
    ctx.object_send(add, key=key + "-idem", arg=1, idempotency_key="once")
    ctx.object_send(add, key=key + "-idem", arg=1, idempotency_key="once")
    h = ctx.generic_send("Tools", "echo", arg={"name": "sent", "qty": 0})
    sent_id = await h.invocation_id()
    attached = await ctx.attach_invocation(sent_id, type_hint=Item)
    return {
        "item": [item.name, item.qty],
        "total": total,
        "raw": raw.decode(),
        "generic": generic,
        "failed": failed,
        "callee": callee.startswith("inv_"),
        "header": seen,
        "shouted": shouted,
        "attached": [type(attached).__name__, attached.name, attached.qty],
    }


@tools.handler()
async def combinators(ctx: Context) -> dict[str, Any]:
    a = ctx.run("a", lambda: 1)
    b = ctx.run("b", lambda: 2)
    done = await durable.gather(a, b)
    gathered = [await f for f in done]
    _, never = ctx.awakeable()
    match await durable.select(never=never, timer=ctx.sleep(timedelta(milliseconds=50))):
        case ["timer", _]:
            selected = "timer"
        case other:
            selected = str(other)
    fast = ctx.sleep(timedelta(milliseconds=10))
    done2, pending = await durable.wait_completed(fast, never)
    order = []
    async for f in durable.as_completed(
        ctx.run("x", lambda: "x"), ctx.sleep(timedelta(milliseconds=30))
    ):
        order.append(await f)
    try:
        await durable.with_timeout(never, timedelta(milliseconds=50))
        timed = "no timeout"
    except DurableTimeoutError as e:
        timed = f"408:{e.status_code}"
    try:
        await ctx.service_call(nothing).with_timeout(timedelta(seconds=30))
        method = "done"
    except DurableTimeoutError:
        method = "timed out"
    return {
        "gathered": gathered,
        "selected": selected,
        "wait_completed": [len(done2), len(pending), done2[0] is fast],
        "as_completed": order,
        "with_timeout": timed,
        "method": method,
        "sleep_future": isinstance(fast, durable.context.SleepFuture),
    }


@tools.handler()
async def resolve(ctx: Context, args: list[str]) -> None:
    awk_id, how = args
    if how == "resolve":
        ctx.resolve_awakeable(awk_id, {"name": "by ctx", "qty": 3})
    else:
        ctx.reject_awakeable(awk_id, "no stock", 410)


@tools.handler()
async def cancel(ctx: Context, inv_id: str) -> None:
    ctx.cancel_invocation(inv_id)


@tools.handler()
async def cancels(ctx: Context, key: str) -> str:
    h = ctx.object_send(saga, key=key + "-sent")
    await h.cancel_invocation()
    f = ctx.object_call(saga, key=key + "-called")
    await f.cancel_invocation()
    try:
        await f
        return "not cancelled"
    except CancelledError as e:
        return f"{type(e).__name__}:{e.status_code}"


@tools.handler()
async def header(ctx: Context) -> str | None:
    return ctx.request().headers.get("x-durable-test")


# --------------------------------------------------------------------- an object

counter = VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    total = (await ctx.get("count", type_hint=int) or 0) + n
    ctx.set("count", total)
    return total


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count", type_hint=int) or 0


@counter.handler()
async def state(ctx: ObjectContext) -> dict[str, Any]:
    ctx.set("item", Item("kept", 2))
    item = await ctx.get("item", type_hint=Item)
    ctx.set("gone", 1)
    before = await ctx.state_keys()
    ctx.clear("gone")
    after = await ctx.state_keys()
    gone = await ctx.get("gone")
    return {
        "key": ctx.key(),
        "item": [type(item).__name__, item.name],
        "keys": [before, after],
        "gone": gone,
    }


@counter.handler()
async def wipe(ctx: ObjectContext) -> list[Any]:
    ctx.clear_all()
    return [await ctx.state_keys(), await ctx.get("item")]


@counter.handler(kind="shared")
async def write_shared(ctx: ObjectContext) -> None:
    ctx.set("count", -1)


@counter.handler()
async def wait_awakeable(ctx: ObjectContext) -> Any:
    awk_id, fut = ctx.awakeable(type_hint=Item)
    # once per invocation: quiet while replaying (the journal has entries past this line)
    log.warning("waiting on %s", awk_id)
    ctx.set("awakeable", awk_id)
    try:
        item = await fut
    except TerminalError as e:
        return f"rejected {e.status_code} {e.message}"
    return [type(item).__name__, item.name, item.qty]


@counter.handler(kind="shared")
async def awakeable_id(ctx: ObjectSharedContext) -> str | None:
    return await ctx.get("awakeable")


@counter.handler()
async def saga(ctx: ObjectContext) -> str:
    try:
        await ctx.sleep(timedelta(seconds=60))
    except CancelledError as e:
        ctx.set("compensated", f"{type(e).__name__}:{e.status_code}")
        raise
    return "slept"


@counter.handler(kind="shared")
async def compensated(ctx: ObjectSharedContext) -> str | None:
    return await ctx.get("compensated")


# --------------------------------------------------------------------- a workflow

signup = Workflow("Signup")


@signup.main(workflow_retention=timedelta(hours=1))
async def run(ctx: WorkflowContext, email: str) -> dict[str, Any]:
    ctx.set("email", email)
    item = await ctx.promise("confirmed", type_hint=Item).value()
    try:
        await ctx.promise("second").value()
        second = "resolved"
    except TerminalError as e:
        second = f"{e.status_code}:{e.message}"
    return {"email": email, "item": [type(item).__name__, item.name], "second": second}


@signup.handler()
async def confirm(ctx: WorkflowSharedContext, item: Item) -> None:
    await ctx.promise("confirmed").resolve(item)


@signup.handler()
async def refuse(ctx: WorkflowSharedContext, why: str) -> None:
    await ctx.promise("second").reject(why, 403)


@signup.handler()
async def peek(ctx: WorkflowSharedContext) -> Any:
    value = await ctx.promise("confirmed", type_hint=Item).peek()
    return None if value is None else value.name


@signup.handler()
async def email(ctx: WorkflowSharedContext) -> str | None:
    return await ctx.get("email")


app = durable.app([tools, counter, signup])
