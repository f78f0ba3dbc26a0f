"""Virtual objects and workflows on the in-process runtime (the real engine and store).

Per-key inboxes, shared handlers that never wait, state history as of any entry,
workflow run-once and durable promises. The same behaviour over HTTP against a real
`durable dev` process is in tests/e2e/test_keyed_state_http.py.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from datetime import timedelta

import durable.testing
import pytest
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
from durable.devtool.engine import Engine
from durable.devtool.errors import Conflict, NotFound
from durable.devtool.store import Store, queries
from durable.devtool.store.ops import PutInvocation
from durable.devtool.workers import InlineLink
from durable.exceptions import InvalidUsageError
from durable.messages import EntryKind

pytestmark = pytest.mark.timeout(30)


@dataclass
class Item:
    sku: str
    qty: int


cart = VirtualObject("Cart")


@cart.handler()
async def add(ctx: ObjectContext, item: Item) -> int:
    items = await ctx.get("items", type_hint=list[Item]) or []
    items.append(item)
    ctx.set("items", items)
    ctx.set("count", len(items))
    return len(items)


@cart.handler()
async def remove_count(ctx: ObjectContext) -> list[str]:
    ctx.clear("count")
    return await ctx.state_keys()


@cart.handler()
async def empty(ctx: ObjectContext) -> list[str]:
    ctx.clear_all()
    return await ctx.state_keys()


@cart.handler(kind="shared")
async def items(ctx: ObjectSharedContext) -> list[Item]:
    return await ctx.get("items", type_hint=list[Item]) or []


@cart.handler(kind="shared")
async def sneaky_write(ctx: ObjectSharedContext) -> None:
    ctx.set("count", 99)  # type: ignore[attr-defined]


@cart.handler(kind="shared")
async def whoami(ctx: ObjectSharedContext) -> str:
    return ctx.key()


counter = VirtualObject("Counter")


@counter.handler()
async def incr(ctx: ObjectContext, tag: str) -> int:
    v = (await ctx.get("count", type_hint=int) or 0) + 1
    ctx.set("count", v)
    order = await ctx.get("order", type_hint=list[str]) or []
    ctx.set("order", [*order, tag])
    return v


@counter.handler()
async def hold(ctx: ObjectContext) -> int:
    """Holds the key until its awakeable is resolved (the id goes into state first)."""
    aw_id, fut = ctx.awakeable(type_hint=int)
    ctx.set("awakeable", aw_id)
    v = (await ctx.get("count", type_hint=int) or 0) + await fut
    ctx.set("count", v)
    return v


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count", type_hint=int) or 0


@counter.handler(kind="shared")
async def awakeable_of_hold(ctx: ObjectSharedContext) -> str | None:
    return await ctx.get("awakeable")


async def _wait_state(
    rt: durable.testing.Runtime, service: str, key: str, name: str, value: object = None
) -> object:
    for _ in range(500):
        state = await rt.state(service, key)
        if name in state and (value is None or state[name] == value):
            return state[name]
        await rt.settle(2)
    raise AssertionError(f"{service}/{key} never got state {name!r} = {value!r}")


async def _wait_status(rt: durable.testing.Runtime, inv: str, status: str) -> None:
    for _ in range(500):
        if await rt.status(inv) == status:
            return
        await rt.settle(2)
    raise AssertionError(f"{inv} never became {status}")


async def test_state_get_set_clear_clear_all_and_keys_with_typed_values():
    async with durable.testing.Runtime([cart]) as rt:
        assert await rt.call(add, Item("A", 1), key="c1") == 1
        assert await rt.call(add, Item("B", 2), key="c1") == 2
        assert await rt.call(add, Item("Z", 1), key="c2") == 1  # keys are separate
        assert await rt.call(items, key="c1") == [Item("A", 1), Item("B", 2)]
        assert await rt.state("Cart", "c1") == {
            "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}],
            "count": 2,
        }
        assert await rt.call(remove_count, key="c1") == ["items"]
        assert await rt.call(empty, key="c1") == []
        assert await rt.state("Cart", "c1") == {}
        assert await rt.state("Cart", "c2") == {"items": [{"sku": "Z", "qty": 1}], "count": 1}
        assert await rt.call(whoami, key="a key/with slash ü") == "a key/with slash ü"


async def test_write_from_a_shared_handler_is_a_clear_terminal_error_and_changes_nothing():
    async with durable.testing.Runtime([cart]) as rt:
        await rt.call(add, Item("A", 1), key="c1")
        with pytest.raises(TerminalError) as err:
            await rt.call(sneaky_write, key="c1")
        assert "ctx.set is not allowed in shared handler Cart/sneaky_write" in err.value.message
        assert "exclusive" in err.value.message
        assert (await rt.state("Cart", "c1"))["count"] == 1
        assert await rt.call(add, Item("B", 1), key="c1") == 2  # the key is not stuck


async def test_exclusive_calls_of_one_key_queue_in_arrival_order_shared_ones_do_not_wait():
    async with durable.testing.Runtime([counter]) as rt:
        await rt.call(incr, "first", key="k")
        holder = await rt.send(hold, key="k")
        aw_id = await _wait_state(rt, "Counter", "k", "awakeable")
        queued = [await rt.send(incr, f"t{i}", key="k") for i in range(3)]
        other_key = await rt.call(incr, "elsewhere", key="k2")  # another key runs at once
        assert other_key == 1
        for pos, inv in enumerate(queued, start=1):
            assert await rt.status(inv) == "pending"
            assert rt.engine.queue_position(inv) == pos
        assert rt.engine.queue_position(holder) is None
        # shared handlers run while the key is held, and see the committed value
        assert await rt.call(get, key="k") == 1
        assert await rt.call(awakeable_of_hold, key="k") == aw_id
        await rt.resolve_awakeable(aw_id, 10)
        assert await rt.output(holder, hold) == 11
        assert [await rt.output(inv, incr) for inv in queued] == [12, 13, 14]
        state = await rt.state("Counter", "k")
        assert state["order"] == ["first", "t0", "t1", "t2"]


async def test_cancelling_a_queued_invocation_moves_the_ones_behind_it_up():
    async with durable.testing.Runtime([counter]) as rt:
        holder = await rt.send(hold, key="k")
        aw_id = await _wait_state(rt, "Counter", "k", "awakeable")
        a, b, c = [await rt.send(incr, t, key="k") for t in "abc"]
        assert rt.engine.queue_position(c) == 3
        await rt.engine.cancel(b)
        assert await rt.status(b) == "cancelled"
        assert rt.engine.queue_position(c) == 2
        await rt.resolve_awakeable(aw_id, 0)
        await rt.output(holder)
        assert await rt.output(c, incr) == 2
        assert (await rt.state("Counter", "k"))["order"] == ["a", "c"]


# -- state history ------------------------------------------------------------------

history = VirtualObject("History")


@history.handler()
async def edit(ctx: ObjectContext, steps: list[list]) -> list[dict]:
    """Apply ``[op, name, value]`` steps; after each, record the full state it sees."""
    seen = []
    for op, name, value in steps:
        if op == "set":
            ctx.set(name, value)
        elif op == "clear":
            ctx.clear(name)
        else:
            ctx.clear_all()
        snapshot = {}
        for k in await ctx.state_keys():
            snapshot[k] = await ctx.get(k)
        seen.append(snapshot)
    return seen


def _fold(state: dict, entry) -> dict:
    if entry.kind is EntryKind.SET_STATE:
        return {**state, entry.name: json.loads(entry.payload)}
    if entry.kind is EntryKind.CLEAR_STATE:
        return {k: v for k, v in state.items() if k != entry.name}
    if entry.kind is EntryKind.CLEAR_ALL_STATE:
        return {}
    return state


async def test_state_as_of_every_entry_equals_what_the_handler_saw():
    runs = [
        [["set", "a", 1], ["set", "b", {"x": [1, 2]}], ["clear", "a", None], ["set", "c", "s"]],
        [["set", "a", 2], ["clear_all", None, None], ["set", "d", 4], ["set", "d", 5]],
        [["clear", "d", None], ["set", "e", None], ["set", "b", True]],
    ]
    # The virtual clock does not move: every change has the same timestamp, so the
    # order must come from the history's sequence, not from time.
    async with durable.testing.Runtime([history]) as rt:
        store = rt.engine.store
        before: dict = {}
        for steps in runs:
            inv = await rt.send(edit, steps, key="h")
            seen = await rt.output(inv)
            await store.write([])
            journal = await store.read(queries.journal, inv)

            def as_of(i: int, inv: str = inv) -> dict:
                raw = store.read_sync(queries.state_as_of, "History", "h", inv, i)
                return {k: json.loads(v) for k, v in raw.items()}

            expected = before
            snapshots = iter(seen)
            for entry in journal:
                expected = _fold(expected, entry)
                assert as_of(entry.index) == expected, (entry, expected)
                if entry.kind is EntryKind.STATE_KEYS:  # the first read of a snapshot
                    assert as_of(entry.index) == next(snapshots)
            assert as_of(0) == before  # before its first change: the previous state
            before = expected
            assert await rt.state("History", "h") == before
        changes = store.read_sync(queries.state_history, "History", "h")
        assert [c.op for c in changes].count("clear_all") == 1
        assert all(c.invocation_id and c.entry_index for c in changes)
        assert [c.seq for c in changes] == sorted(c.seq for c in changes)


async def test_state_as_of_an_entry_of_a_shared_handler_uses_its_time():
    async with durable.testing.Runtime([counter]) as rt:
        await rt.call(incr, "x", key="k")
        inv = await rt.send(get, key="k")
        assert await rt.output(inv) == 1
        await rt.advance(timedelta(seconds=5))
        await rt.call(incr, "y", key="k")
        raw = rt.engine.store.read_sync(queries.state_as_of, "Counter", "k", inv, 1)
        assert json.loads(raw["count"]) == 1


# -- workflows -----------------------------------------------------------------------

signup = Workflow("Signup")
main_runs: list[str] = []


@signup.main()
async def run(ctx: WorkflowContext, email: str) -> str:
    await ctx.run("count", lambda: main_runs.append(email))
    ctx.set("status", "waiting")
    await ctx.sleep(timedelta(seconds=10))
    ctx.set("status", "confirming")
    try:
        code = await ctx.promise("code", type_hint=str).value()
    except TerminalError as e:
        ctx.set("status", "rejected")
        return f"rejected: {e.message}"
    ctx.set("status", "done")
    return f"{email} confirmed with {code}"


@signup.handler()
async def confirm(ctx: WorkflowSharedContext, code: str) -> None:
    await ctx.promise("code").resolve(code)


@signup.handler()
async def deny(ctx: WorkflowSharedContext, why: str) -> None:
    await ctx.promise("code").reject(why, 403)


@signup.handler()
async def status(ctx: WorkflowSharedContext) -> dict:
    return {"status": await ctx.get("status"), "code": await ctx.promise("code").peek()}


async def test_workflow_main_runs_once_and_a_second_run_gets_the_first_result():
    main_runs.clear()
    async with durable.testing.Runtime([signup]) as rt:
        first = await rt.send(run, "a@x", key="w1")
        again = await rt.send(run, "b@x", key="w1")
        assert again == first
        await _wait_status(rt, first, "suspended")  # in the sleep
        await rt.call(confirm, "123", key="w1")  # resolved before main waits on it
        assert await rt.call(status, key="w1") == {"status": "waiting", "code": "123"}
        await rt.advance(timedelta(seconds=11))
        assert await rt.output(first) == "a@x confirmed with 123"
        assert await rt.call(run, "c@x", key="w1") == "a@x confirmed with 123"
        assert main_runs == ["a@x"]
        # completed workflows stay inspectable: state, promises, output
        assert await rt.call(status, key="w1") == {"status": "done", "code": "123"}


async def test_workflow_promise_resolved_after_main_waits_and_rejected_one():
    async with durable.testing.Runtime([signup]) as rt:
        w2 = await rt.send(run, "a@x", key="w2")
        w3 = await rt.send(run, "b@x", key="w3")
        for w in (w2, w3):
            await _wait_status(rt, w, "suspended")  # in the sleep
        await rt.advance(timedelta(seconds=11))
        await _wait_state(rt, "Signup", "w2", "status", "confirming")
        await _wait_status(rt, w2, "suspended")  # waiting on the promise
        assert await rt.call(status, key="w2") == {"status": "confirming", "code": None}
        await rt.call(confirm, "777", key="w2")
        assert await rt.output(w2) == "a@x confirmed with 777"
        await rt.call(deny, "no such user", key="w3")
        assert await rt.output(w3) == "rejected: no such user"
        assert (await rt.state("Signup", "w3"))["status"] == "rejected"
        with pytest.raises(TerminalError) as err:  # a promise completes once
            await rt.call(confirm, "again", key="w2")
        assert err.value.status_code == 409 and "already completed" in err.value.message
        with pytest.raises(Conflict):
            await rt.engine.complete_promise("Signup", "w2", "code", '{"result": "\\"x\\""}')


async def test_workflow_shared_handler_runs_for_an_id_that_never_ran():
    async with durable.testing.Runtime([signup]) as rt:  # as on Restate
        assert await rt.call(status, key="nobody") == {"status": None, "code": None}


brief = Workflow("Brief")


@brief.main(workflow_retention=timedelta(days=1))
async def brief_run(ctx: WorkflowContext, n: int) -> int:
    ctx.set("n", n)
    await ctx.promise("p").resolve(n)
    return n


@brief.handler()
async def brief_n(ctx: WorkflowSharedContext) -> int:
    return await ctx.get("n")


keep = Workflow("Keep")


@keep.main()
async def keep_run(ctx: WorkflowContext, n: int) -> int:
    ctx.set("n", n)
    return n


twice = Service("Twice")


@twice.handler()
async def call_keep_twice(ctx: Context, wf_id: str) -> list:
    first = await ctx.workflow_call(keep_run, key=wf_id, arg=1)
    try:
        second = await ctx.workflow_call(keep_run, key=wf_id, arg=2)
    except TerminalError as e:
        second = [e.status_code, e.message]
    return [first, second]


async def test_a_handler_calling_a_workflow_main_again_gets_a_409():
    async with durable.testing.Runtime([keep, twice]) as rt:  # as on Restate
        got = await rt.call(call_keep_twice, "t1")
        assert got == [1, [409, "the workflow method was already invoked"]]
        assert (await rt.state("Keep", "t1"))["n"] == 1  # ran once


async def test_finished_workflows_are_kept_until_their_retention_then_forgotten():
    async with durable.testing.Runtime([keep, brief]) as rt:
        kept = await rt.send(keep_run, 7, key="k1")
        assert await rt.output(kept) == 7
        first = await rt.send(brief_run, 1, key="b1")
        assert await rt.output(first) == 1
        await rt.advance(timedelta(hours=23))
        assert await rt.engine.sweep_workflows() == []
        assert await rt.call(brief_n, key="b1") == 1
        assert await rt.call(brief_run, 2, key="b1") == 1  # still the first run
        await rt.advance(timedelta(hours=2))
        assert await rt.engine.sweep_workflows() == [("Brief", "b1")]
        assert await rt.state("Brief", "b1") == {}
        with pytest.raises(NotFound):
            await rt.engine.workflow_invocation("Brief", "b1")
        with pytest.raises(NotFound):
            await rt.engine.output(first, wait=False)
        # the id runs again, from scratch (its promise too)
        second = await rt.send(brief_run, 3, key="b1")
        # a workflow run's id is derived from the workflow id (as in Restate), so the new run
        # may reuse the purged one's id; what matters is that it runs again
        assert await rt.output(second) == 3
        assert await rt.call(brief_n, key="b1") == 3
        # workflows without a retention are kept
        await rt.advance(timedelta(days=400))
        assert await rt.engine.sweep_workflows() == [("Brief", "b1")]
        assert await rt.engine.workflow_invocation("Keep", "k1") == kept
        assert await rt.state("Keep", "k1") == {"n": 7}


def test_workflow_retention_is_part_of_discovery_and_must_be_positive():
    info = {h.name: h for h in brief.info().handlers}
    assert info["brief_run"].workflow_retention_s == 86400
    assert info["brief_n"].workflow_retention_s is None
    with pytest.raises(InvalidUsageError):
        Workflow("Bad").main(workflow_retention=timedelta(0))


async def _engine_on(path) -> tuple:
    store = await asyncio.to_thread(Store.open, str(path))
    engine = Engine(store)
    await engine.start()
    link = InlineLink(engine, {counter.name: counter}, 0.0)
    engine.set_link(link, {counter.name: counter.info()})
    return store, engine, link


async def _shut(store, engine, link) -> None:
    await link.stop()
    await engine.stop()
    await asyncio.to_thread(store.close)


async def _committed_state(store, key: str) -> dict:
    await store.write([])
    return {k: json.loads(v) for k, v in (await store.read(queries.state, "Counter", key)).items()}


async def _until_state(store, key: str, name: str) -> object:
    for _ in range(500):
        state = await _committed_state(store, key)
        if name in state:
            return state[name]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {name} in {key}")


async def test_key_inboxes_are_rebuilt_in_order_after_a_restart(tmp_path):
    path = tmp_path / "store.duckdb"
    store, engine, link = await _engine_on(path)
    holder, _ = await engine.submit("Counter", "hold", "k", "null")
    await _until_state(store, "k", "awakeable")
    queued = [(await engine.submit("Counter", "incr", "k", json.dumps(t)))[0] for t in "abc"]
    await store.write([])
    for inv in queued:  # the store says pending too (durable sql, recovery)
        assert (await store.read(queries.invocation, inv)).status == "pending"
    # k2: its owner's row says ready and so does a later arrival's, as if a crash had
    # lost their status changes; only one of them may run
    holder2, _ = await engine.submit("Counter", "hold", "k2", "null")
    await _until_state(store, "k2", "awakeable")
    late, _ = await engine.submit("Counter", "incr", "k2", '"late"')
    await store.write([])
    for inv in (holder2, late):
        row = await engine.row(inv)
        await store.write([PutInvocation(replace(row, status="ready"))])
    await _shut(store, engine, link)  # a stop without finishing anything

    store, engine, link = await _engine_on(path)
    try:
        assert [engine.queue_position(q) for q in queued] == [1, 2, 3]
        await asyncio.sleep(0.2)
        assert engine.queue_position(late) == 1  # holder2 owns k2 again
        assert "order" not in await _committed_state(store, "k2")
        for key in ("k", "k2"):
            aw = (await _committed_state(store, key))["awakeable"]
            await engine.resolve_awakeable(aw, "1", None)
        for inv in [holder, *queued, holder2, late]:
            outcome = await engine.output(inv, wait=True)
            assert outcome.failure is None, outcome
        assert (await _committed_state(store, "k"))["order"] == ["a", "b", "c"]
        assert (await _committed_state(store, "k2"))["order"] == ["late"]
        assert (await _committed_state(store, "k2"))["count"] == 2
    finally:
        await _shut(store, engine, link)


poison = VirtualObject("Poison")


@poison.handler()
async def set_odd_name(ctx: ObjectContext, n: int) -> int:
    ctx.set("fine", n)
    ctx.set("bad\ud800", n)  # a lone surrogate: DuckDB cannot store this name
    return n


@poison.handler()
async def bump(ctx: ObjectContext) -> int:
    n = (await ctx.get("fine", type_hint=int) or 0) + 1
    ctx.set("fine", n)
    return n


async def test_a_state_name_the_store_cannot_hold_fails_the_call_not_the_store():
    async with durable.testing.Runtime([poison]) as rt:
        with pytest.raises(TerminalError) as err:
            await rt.call(set_odd_name, 5, key="k")
        assert "lone UTF-16 surrogate" in err.value.message
        assert "set_state" in err.value.message
        assert err.value.status_code == 500
        # what came before it was journaled and kept, and the key is not stuck
        assert (await rt.state("Poison", "k")) == {"fine": 5}
        assert await rt.call(bump, key="k") == 6
