"""Timers, awakeables, calls, sends, cancellation and combinators on the real engine, in
process (``durable.testing``): a virtual clock, and ``suspend_after=0`` so every await on
the runtime suspends the handler and the next step runs by replay."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import durable
import durable.testing
import pytest
from durable import (
    CancelledError,
    Context,
    DurableTimeoutError,
    ObjectContext,
    Service,
    TerminalError,
    VirtualObject,
)
from durable.messages import EntryKind

pytestmark = pytest.mark.timeout(30)

log: list[str] = []
published: dict[str, str] = {}
ran: list[str] = []

# -- a multi-day flow
reminders = Service("Reminders")


@reminders.handler()
async def remind(ctx: Context, who: str) -> list[float]:
    t0 = await ctx.time()
    await ctx.sleep(timedelta(days=1))
    t1 = await ctx.time()
    await ctx.run("first reminder", lambda: log.append(f"day 1: {who}"))
    await ctx.sleep(timedelta(days=1))
    t2 = await ctx.time()
    ctx.service_send(note, f"half a day after day 2: {who}", send_delay=timedelta(hours=12))
    return [t1 - t0, t2 - t0]


@reminders.handler()
async def note(ctx: Context, text: str) -> None:
    await ctx.run("note", lambda: log.append(text))


# -- calls
accounts = VirtualObject("Account")


@accounts.handler()
async def deposit(ctx: ObjectContext, amount: int) -> int:
    await ctx.run("ran", lambda: ran.append(f"{ctx.key()}+{amount}"))
    total = (await ctx.get("balance", type_hint=int) or 0) + amount
    ctx.set("balance", total)
    return total


@accounts.handler()
async def wait_then_add(ctx: ObjectContext, amount: int) -> int:
    aw_id, fut = ctx.awakeable(type_hint=str)
    await ctx.run("publish", lambda: published.__setitem__(ctx.key(), aw_id))
    try:
        await fut
    except CancelledError:
        await ctx.run("callee compensates", lambda: log.append(f"callee {ctx.key()} undone"))
        raise
    return amount


bank = Service("Bank")


@bank.handler()
async def transfer(ctx: Context, amount: int) -> dict[str, Any]:
    call = ctx.object_call(deposit, "acc-1", amount)
    callee = await call.invocation_id()
    total = await call
    again = await ctx.object_call(deposit, "acc-1", amount, idempotency_key="once")
    twice = await ctx.object_call(deposit, "acc-1", amount, idempotency_key="once")
    later = ctx.object_send(deposit, "acc-2", 5, send_delay=timedelta(hours=1))
    never = ctx.object_send(deposit, "acc-3", 7, send_delay=timedelta(hours=1))
    never.cancel_invocation()
    return {
        "callee": callee,
        "total": total,
        "again": again,
        "twice": twice,
        "later": await later.invocation_id(),
        "never": await never.invocation_id(),
    }


@bank.handler()
async def attach(ctx: Context, inv_id: str) -> Any:
    return await ctx.attach_invocation(inv_id, type_hint=int)


@bank.handler()
async def parent(ctx: Context, key: str) -> int:
    try:
        return await ctx.object_call(wait_then_add, key, 1)
    except CancelledError:
        await ctx.run("parent compensates", lambda: log.append(f"parent {key} undone"))
        raise


# -- a saga
trips = Service("Trip")


@trips.handler()
async def book(ctx: Context, trip: str) -> str:
    compensations = []
    try:
        for step in ("flight", "hotel", "car"):
            await ctx.run(f"book {step}", lambda s=step: log.append(f"book {s}"))
            compensations.append(step)
            aw_id, confirmed = ctx.awakeable()
            await ctx.run("publish", lambda s=step, a=aw_id: published.__setitem__(s, a))
            await confirmed
        return "booked"
    except TerminalError:
        for step in reversed(compensations):
            await ctx.run(f"cancel {step}", lambda s=step: log.append(f"cancel {s}"))
        raise


@trips.handler()
async def busy_then_wait(ctx: Context) -> str:
    aw_id, gate = ctx.awakeable()
    await ctx.run("publish", lambda: published.__setitem__("gate", aw_id))
    await gate
    await ctx.run("long step", lambda: log.append("long step"))
    try:
        await ctx.sleep(timedelta(seconds=1))
    except CancelledError:
        await ctx.run("compensate", lambda: log.append("compensated"))
        raise
    return "not cancelled"


# -- combinators
race = Service("Race")


@race.handler()
async def first(ctx: Context) -> list[Any]:
    ids, futs = zip(*(ctx.awakeable(type_hint=str) for _ in range(3)), strict=True)
    await ctx.run("publish", lambda: published.update({f"r{i}": a for i, a in enumerate(ids)}))
    winner = await durable.select(a=futs[0], b=futs[1], c=futs[2])
    order = [await f async for f in durable.as_completed(*futs)]
    both = await durable.gather(ctx.sleep(timedelta(seconds=1)), ctx.sleep(timedelta(hours=1)))
    try:
        await durable.with_timeout(ctx.awakeable()[1], timedelta(minutes=5))
        timed_out = False
    except DurableTimeoutError as e:
        timed_out = e.status_code == 408
    return [winner, order, len(both), timed_out]


@race.handler()
async def early(ctx: Context) -> str:
    aw_id, fut = ctx.awakeable(type_hint=str)
    await ctx.run("publish", lambda: published.__setitem__("early", aw_id))
    await ctx.sleep(timedelta(hours=1))  # resolved while it sleeps: kept
    return await fut


SERVICES = [reminders, accounts, bank, trips, race]


@pytest.fixture(autouse=True)
def _clear() -> None:
    log.clear()
    published.clear()
    ran.clear()


async def test_a_multi_day_flow_runs_in_milliseconds_with_the_virtual_clock():
    t0 = time.perf_counter()
    async with durable.testing.Runtime(SERVICES) as rt:
        inv = await rt.send(remind, "Ann")
        await rt.settle()
        assert await rt.status(inv) == "suspended"
        await rt.advance(timedelta(hours=23))
        assert log == [] and await rt.status(inv) == "suspended"
        await rt.advance(timedelta(days=1, hours=13))  # day 1, day 2, then the delayed send
        assert await rt.output(inv, remind) == [86400.0, 172800.0]
        assert log == ["day 1: Ann", "half a day after day 2: Ann"]
    assert time.perf_counter() - t0 < 5


async def test_delayed_send_is_scheduled_until_due_and_runs_once():
    async with durable.testing.Runtime(SERVICES) as rt:
        inv = await rt.send(deposit, 3, key="acc-9", delay=timedelta(minutes=5))
        await rt.settle()
        assert await rt.status(inv) == "scheduled"
        await rt.advance(timedelta(minutes=4))
        assert await rt.status(inv) == "scheduled" and ran == []
        await rt.advance(timedelta(minutes=2))
        assert await rt.output(inv, deposit) == 3
        assert ran == ["acc-9+3"]


async def test_calls_sends_idempotency_and_the_callers_journal():
    async with durable.testing.Runtime(SERVICES) as rt:
        inv = await rt.send(transfer, 10)
        out = await rt.output(inv, transfer)
        # the call's result, the callee's id, and an idempotent call that ran once
        assert out["total"] == 10 and out["again"] == 20 and out["twice"] == 20
        assert ran.count("acc-1+10") == 2  # the first call, and the idempotent one once
        assert await rt.output(out["callee"], deposit) == 10
        # the caller's journal records each call with its result
        calls = [e for e in await rt.journal(inv) if e.kind is EntryKind.CALL]
        assert [(e.name, e.result, e.completed) for e in calls] == [
            ("Account/deposit", "10", True),
            ("Account/deposit", "20", True),
            ("Account/deposit", "20", True),
        ]
        assert {c.payload for c in calls[1:]} and calls[1].payload == calls[2].payload
        # a delayed send waits; a cancelled one never runs
        assert await rt.status(out["later"]) == "scheduled"
        assert await rt.status(out["never"]) == "cancelled"
        await rt.advance(timedelta(hours=2))
        assert await rt.output(out["later"], deposit) == 5
        assert "acc-3+7" not in ran
        assert await rt.state("Account", "acc-3") == {}
        # attach to another invocation's result
        assert await rt.call(attach, out["later"]) == 5


async def test_idempotent_calls_from_different_callers_reach_one_invocation():
    async with durable.testing.Runtime(SERVICES) as rt:
        a = await rt.send(transfer, 1)
        b = await rt.send(transfer, 1)
        oa, ob = await rt.output(a, transfer), await rt.output(b, transfer)
        assert oa["again"] == ob["again"] == oa["twice"]
        assert oa["callee"] != ob["callee"]
        assert ran.count("acc-1+1") == 3  # two plain calls, one idempotent


async def test_cancel_a_saga_runs_its_compensations_in_reverse_order():
    async with durable.testing.Runtime(SERVICES) as rt:
        inv = await rt.send(book, "rome")
        await rt.settle()
        await rt.resolve_awakeable(published["flight"], True)
        await rt.settle()
        assert log == ["book flight", "book hotel"]
        assert await rt.status(inv) == "suspended"  # waiting for the hotel's confirmation
        assert await rt.cancel(inv) in ("ready", "running", "suspended", "cancelled")
        with pytest.raises(CancelledError):
            await rt.output(inv, book)
        assert log == ["book flight", "book hotel", "cancel hotel", "cancel flight"]
        assert await rt.status(inv) == "cancelled"
        # resolving the awakeable of the cancelled step is a clear conflict
        with pytest.raises(Exception, match="already completed|cancelled"):
            await rt.resolve_awakeable(published["hotel"], True)


async def test_kill_a_saga_runs_no_compensation():
    async with durable.testing.Runtime(SERVICES) as rt:
        inv = await rt.send(book, "oslo")
        await rt.settle()
        assert log == ["book flight"]
        assert await rt.kill(inv) == "killed"
        await rt.advance(timedelta(hours=1))
        assert log == ["book flight"]
        assert await rt.status(inv) == "killed"
        with pytest.raises(Exception, match="killed"):
            await rt.resolve_awakeable(published["flight"], True)


async def test_cancel_reaches_a_handler_busy_in_a_step_at_its_next_await():
    async with durable.testing.Runtime(SERVICES) as rt:
        inv = await rt.send(busy_then_wait)
        await rt.settle()
        # cancel while it awaits the gate, but resolve the gate first: nothing pending
        await rt.resolve_awakeable(published["gate"], None)
        status = await rt.cancel(inv)
        assert status != "cancelled" or log  # it was running or already past the gate
        with pytest.raises(CancelledError):
            await rt.output(inv, busy_then_wait)
        assert log == ["long step", "compensated"]
        [sleep] = [e for e in await rt.journal(inv) if e.kind is EntryKind.SLEEP]
        assert sleep.completed and sleep.failure.code == 409  # failed at once: no timer ran


async def test_cancel_propagates_to_the_call_it_waits_on_and_kill_kills_the_callee():
    async with durable.testing.Runtime(SERVICES) as rt:
        p = await rt.send(parent, "k1")
        await rt.settle()
        assert "k1" in published
        await rt.cancel(p)
        with pytest.raises(CancelledError):
            await rt.output(p, parent)
        await rt.settle()
        assert sorted(log) == ["callee k1 undone", "parent k1 undone"]

        log.clear()
        p2 = await rt.send(parent, "k2")
        await rt.settle()
        [child] = [e for e in await rt.journal(p2) if e.kind is EntryKind.CALL and not e.completed]
        import json

        child_id = json.loads(child.payload)["invocation_id"]
        assert await rt.kill(p2) == "killed"
        await rt.settle()
        assert await rt.status(child_id) == "killed"
        assert log == []


async def test_select_and_gather_are_deterministic_across_replays():
    async with durable.testing.Runtime(SERVICES, suspend_after=0) as rt:
        inv = await rt.send(first)
        await rt.settle()
        # complete in the opposite order of the arguments: c, then b, then a
        for name in ("r2", "r1", "r0"):
            await rt.resolve_awakeable(published[name], name)
            await rt.settle()
        await rt.advance(timedelta(minutes=10))  # the gather's 1 s sleep and the timeout
        assert await rt.status(inv) == "suspended"  # the 1 h branch of the gather
        await rt.advance(timedelta(hours=1))
        winner, order, n, timed_out = await rt.output(inv, first)
        assert winner == ["c", "r2"]
        assert order == ["r2", "r1", "r0"]
        assert n == 2 and timed_out is True
        combinators = [
            (e.name, json_list(e.result))
            for e in await rt.journal(inv)
            if e.kind is EntryKind.COMBINATOR
        ]
        assert combinators[0] == ("select", [3])
        assert [c[0] for c in combinators[1:]] == [
            "as_completed",
            "as_completed",
            "as_completed",
            "with_timeout",
        ]


async def test_a_resolution_that_arrives_before_the_await_is_kept():
    async with durable.testing.Runtime(SERVICES) as rt:
        inv = await rt.send(early)
        await rt.settle()
        await rt.resolve_awakeable(published["early"], "kept")
        await rt.advance(timedelta(hours=1, seconds=1))
        assert await rt.output(inv, early) == "kept"


async def test_resolving_bad_awakeable_ids_leaves_the_invocation_unharmed():
    from durable.devtool.errors import BadRequest, Conflict, NotFound

    async with durable.testing.Runtime(SERVICES) as rt:
        inv = await rt.send(early)
        await rt.settle()
        with pytest.raises(BadRequest):
            await rt.resolve_awakeable("not-an-id", 1)
        with pytest.raises(NotFound):
            await rt.resolve_awakeable("awk_" + "x" * 24, 1)
        await rt.resolve_awakeable(published["early"], "once")
        with pytest.raises(Conflict):
            await rt.resolve_awakeable(published["early"], "twice")
        await rt.advance(timedelta(hours=2))
        assert await rt.output(inv, early) == "once"


def json_list(text: str | None) -> list[int]:
    import json

    return json.loads(text or "[]")
