"""Unit tests of the combinators, timeouts and suspension details of the executor.

Driven message by message with the driver of ``test_executor`` (no runtime, no store).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

import durable
import pytest
from durable.exceptions import DurableTimeoutError
from durable.ids import idempotent_invocation_id
from durable.messages import EntryKind, Failure, JournalEntry, NewEntry, Suspend
from test_executor import INV, WAIT, Driver, ok, run_once

pytestmark = pytest.mark.timeout(20)


def awk_entry(index: int, result: str | None = None) -> JournalEntry:
    return JournalEntry(
        index,
        EntryKind.AWAKEABLE,
        None,
        json.dumps({"id": f"awk_test{index}"}),
        result,
        None,
        result is not None,
    )


def two_awakeables_select() -> Any:
    svc = durable.Service("Race")

    @svc.handler()
    async def go(ctx: durable.Context) -> list[Any]:
        _, a = ctx.awakeable()
        _, b = ctx.awakeable()
        name, value = await durable.select(a=a, b=b)
        after = await ctx.run("after", lambda: "x")
        return [name, value, after]

    return go


async def test_select_returns_the_first_to_complete_not_the_first_argument():
    d = Driver(two_awakeables_select()).start()
    await d.wait_for(lambda ms: len(ms) == 2)
    d.complete(2, '"B"')  # b completes first although a is the first argument
    await d.wait_entry(EntryKind.COMBINATOR)
    d.complete(1, '"A"')
    await d.finish()
    assert ok(d) == ["b", "B", "x"]
    comb = next(e for e in d.entries if e.kind is EntryKind.COMBINATOR)
    assert (comb.index, comb.name, comb.completed) == (3, "select", True)
    assert json.loads(comb.payload) == {"futures": [1, 2]}
    assert json.loads(comb.result) == [2]


async def test_select_replays_the_recorded_winner_although_both_are_done_now():
    # the original run saw b first; by the replay a has completed too
    recorded = (
        awk_entry(1, '"A"'),
        awk_entry(2, '"B"'),
        JournalEntry(3, EntryKind.COMBINATOR, "select", '{"futures": [1, 2]}', "[2]", None, True),
    )
    d = await run_once(two_awakeables_select(), recorded=recorded, suspend_after=0)
    assert ok(d) == ["b", "B", "x"]
    assert [e.kind for e in d.entries] == [EntryKind.RUN]  # nothing re-decided


async def test_select_deciding_on_replay_uses_the_runtime_completion_order():
    # both completed while the invocation was suspended, b first: no combinator entry yet
    go = two_awakeables_select()
    d = Driver(go, recorded=(awk_entry(1, '"A"'), awk_entry(2, '"B"')), suspend_after=0)
    d.start_msg = dataclasses.replace(d.start_msg, completion_order=(0, 2, 1))
    d.executor = type(d.executor)(d.hdef, d.start_msg, d._emit, suspend_after=0)
    await d.finish()
    assert ok(d) == ["b", "B", "x"]
    comb = d.entries[0]
    assert comb.kind is EntryKind.COMBINATOR and json.loads(comb.result) == [2, 1]


async def test_select_on_a_different_set_of_futures_is_a_nondeterminism_error():
    recorded = (
        awk_entry(1, '"A"'),
        awk_entry(2, '"B"'),
        JournalEntry(3, EntryKind.COMBINATOR, "select", '{"futures": [2]}', "[2]", None, True),
    )
    d = await run_once(two_awakeables_select(), recorded=recorded, suspend_after=0)
    [failed] = d.messages
    assert failed.nondeterminism and "entry 3" in failed.error


async def test_every_await_replayed_gives_the_same_outcome():
    """Force a replay at every await: run, suspend, complete, replay from the journal."""
    svc = durable.Service("Steps")

    @svc.handler()
    async def go(ctx: durable.Context) -> list[Any]:
        out = []
        futs = [ctx.awakeable()[1] for _ in range(3)]
        async for f in durable.as_completed(*futs):
            out.append(await f)
        g1, g2 = ctx.sleep(timedelta(seconds=1)), ctx.sleep(timedelta(seconds=2))
        await durable.gather(g1, g2)
        name, _ = await durable.select(one=ctx.sleep(timedelta(hours=1)), two=ctx.awakeable()[1])
        out.append(name)
        return out

    journal: list[JournalEntry] = []
    completions = {3: '"c"', 1: '"a"', 2: '"b"'}  # completed in the order 3, 1, 2
    order: list[int] = [0]
    rounds = 0
    while True:
        rounds += 1
        d = Driver(go, recorded=tuple(journal), suspend_after=0)
        d.start_msg = dataclasses.replace(d.start_msg, completion_order=tuple(order))
        d.executor = type(d.executor)(d.hdef, d.start_msg, d._emit, suspend_after=0)
        await d.finish()
        journal.extend(d.entries)
        if not isinstance(d.last, Suspend):
            break
        # the runtime completes the first entry it waits on (in our chosen order)
        waiting = d.last.waiting_on
        pick = next((i for i in completions if i in waiting), waiting[-1])
        result = completions.pop(pick, "null")
        journal = [
            dataclasses.replace(e, result=result, completed=True) if e.index == pick else e
            for e in journal
        ]
        order.append(pick)
        assert rounds < 20
    assert ok(d) == ["c", "a", "b", "two"]
    combinators = [json.loads(e.result) for e in journal if e.kind is EntryKind.COMBINATOR]
    assert combinators == [[3], [1], [2], [10]]


async def test_gather_suspends_on_what_is_left_after_one_branch_completes():
    svc = durable.Service("Gather")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        await durable.gather(ctx.awakeable()[1], ctx.awakeable()[1])
        return "both"

    d = Driver(go, suspend_after=0.2).start()
    await d.wait_for(lambda ms: len(ms) == 2)
    d.complete(1, "null")
    await d.finish()
    assert d.last == Suspend(INV, 3, waiting_on=(2,))


async def test_end_of_one_await_re_arms_the_suspension_of_the_others():
    """asyncio.gather over durable futures: one branch ends, the other still waits on the
    runtime, so the handler suspends (before the fix the timer was never re-armed)."""
    svc = durable.Service("AsyncioGather")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        await asyncio.gather(ctx.awakeable()[1], ctx.awakeable()[1])
        return "both"

    d = Driver(go, suspend_after=0.3).start()
    await d.wait_for(lambda ms: len(ms) == 2)
    await asyncio.sleep(0.1)
    d.complete(1, "null")
    await d.finish()
    assert d.last == Suspend(INV, 3, waiting_on=(2,))


async def test_a_long_timer_suspends_at_once_and_a_short_one_not_before_it_is_due():
    svc = durable.Service("Timers")

    @svc.handler()
    async def go(ctx: durable.Context, seconds: float) -> str:
        await ctx.sleep(timedelta(seconds=seconds))
        return "slept"

    d = Driver(go, 3600, suspend_after=5).start()  # nothing completes it within 5 s
    await d.finish()
    assert d.last == Suspend(INV, 3, waiting_on=(1,))

    d = Driver(go, 0.15, suspend_after=0.2).start()  # due before a suspension pays off
    await d.wait_entry(EntryKind.SLEEP)
    await asyncio.sleep(0.3)
    assert not any(isinstance(m, Suspend) for m in d.messages)
    d.complete(1, "null")
    await d.finish()
    assert ok(d) == "slept"


async def test_end_of_the_last_await_does_not_suspend_a_running_handler():
    svc = durable.Service("Busy")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        await ctx.awakeable()[1]
        await asyncio.sleep(0.3)  # not a durable await: the handler must not be dropped
        return "done"

    d = Driver(go, suspend_after=0.05).start()
    await d.wait_entry(EntryKind.AWAKEABLE)
    d.complete(1, "null")
    await d.finish()
    assert ok(d) == "done"


async def test_with_timeout_raises_a_terminal_408_when_the_timer_wins():
    svc = durable.Service("Timeout")

    @svc.handler()
    async def go(ctx: durable.Context) -> list[Any]:
        _, slow = ctx.awakeable()
        try:
            await slow.with_timeout(timedelta(seconds=5))
        except DurableTimeoutError as e:
            first = [e.status_code, isinstance(e, durable.TerminalError)]
        _, fast = ctx.awakeable()
        second = await durable.with_timeout(fast, timedelta(seconds=5))
        return [*first, second]

    d = Driver(go).start()
    await d.wait_for(lambda ms: len(ms) == 2)  # awakeable, sleep
    assert [e.kind for e in d.entries] == [EntryKind.AWAKEABLE, EntryKind.SLEEP]
    assert json.loads(d.entries[1].payload) == {"duration_ms": 5000}
    d.complete(2, "null")  # the timer fires
    await d.wait_for(lambda ms: len(ms) == 5)  # combinator, awakeable, sleep
    d.complete(4, '"ok"')
    await d.finish()
    assert ok(d) == [408, True, "ok"]
    kinds = [(e.kind, e.name) for e in d.entries]
    assert kinds == [
        (EntryKind.AWAKEABLE, None),
        (EntryKind.SLEEP, None),
        (EntryKind.COMBINATOR, "with_timeout"),
        (EntryKind.AWAKEABLE, None),
        (EntryKind.SLEEP, None),
        (EntryKind.COMBINATOR, "with_timeout"),
    ]


async def test_combinators_refuse_non_durable_awaitables():
    svc = durable.Service("Bad")

    async def coro() -> int:
        return 1

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        c = coro()
        try:
            await durable.select(a=c)
        except TypeError as e:
            c.close()
            return str(e)
        return "accepted"

    d = await run_once(go)
    assert "durable futures" in ok(d)


async def test_idempotent_calls_and_workflow_calls_name_a_derived_invocation():
    wf = durable.Workflow("Signup")

    @wf.main()
    async def run(ctx: durable.WorkflowContext, email: str) -> bool:
        return True

    other = durable.Service("Billing")

    @other.handler()
    async def bill(ctx: durable.Context, n: int) -> int:
        return n

    svc = durable.Service("Caller")

    @svc.handler()
    async def go(ctx: durable.Context) -> list[str]:
        a = await ctx.service_call(bill, 1, idempotency_key="k").invocation_id()
        b = await ctx.service_send(bill, 1, idempotency_key="k").invocation_id()
        c = await ctx.workflow_send(run, "u1", "a@b").invocation_id()
        d = await ctx.service_send(bill, 1).invocation_id()
        return [a, b, c, d]

    d = Driver(go).start()
    await d.wait_entry(EntryKind.CALL)
    d.complete(1, "1")
    await d.finish()
    a, b, c, other_id = ok(d)
    assert a == b == idempotent_invocation_id("Billing//bill", "k")
    assert c == idempotent_invocation_id("workflow:Signup/u1", "run")
    assert other_id not in (a, c)
    assert [json.loads(e.payload)["invocation_id"] for e in d.entries] == [a, b, c, other_id]


async def test_timeouts_and_failures_reach_the_handler_through_select():
    svc = durable.Service("Fail")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        _, a = ctx.awakeable()
        try:
            await durable.select(a=a, t=ctx.sleep(timedelta(seconds=1)))
        except durable.TerminalError as e:
            return f"{e.status_code} {e.message}"
        return "no error"

    d = Driver(go).start()
    await d.wait_for(lambda ms: len(ms) == 2)
    d.complete(1, failure=Failure(410, "gone"))
    await d.finish()
    assert ok(d) == "410 gone"
    assert isinstance(d.messages[2], NewEntry) and d.messages[2].entry.kind is EntryKind.COMBINATOR


def test_wait_constant_is_shared():
    assert WAIT > 0
