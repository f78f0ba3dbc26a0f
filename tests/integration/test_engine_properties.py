"""Stateful property test of the real engine on a DuckDB file: random event orders.

Hypothesis submits calls to a virtual object (exclusive ``add``, which may call a
service, sleep, wait on an awakeable or fail its first attempt; shared ``peek``), lets
the loop run a few turns or settle, advances the virtual clock, resolves and rejects
awakeables, cancels and kills, reloads the worker link, restarts cleanly, and crashes:
the store is dropped as a ``kill -9`` would drop it (:meth:`Store.abandon`: writes
queued and not yet logged are lost) and every task of the old loop with it; a new
store and engine then recover from the file, on a new loop.

Checked at every moment, by a link that watches each message:

- one writer per key: no ``Start`` of an exclusive handler while another exclusive
  invocation of that key still executes (dispatched, and neither ended, suspended,
  failed, aborted, nor lost with its link);
- nothing acknowledged lost: every submission answered, every entry the handler was
  told is committed (an ``Ack``, a ``Completion``, a completed entry it replayed) is in
  the journal with the same kind, name and result, across crashes;

after every step:

- every journal is indexed 0..n-1 with its input first;

after every step that let the loop settle:

- every invocation has ended or waits on something named (a key's queue and its owner,
  a delayed start, a retry time, entries not completed, an error that paused it);

and at the end, with everything resolved and the clock far ahead: every invocation has
ended and each key's counter is the sum of its completed adds.

Bounded for CI: a fixed number of examples and steps, no shrinking, a step timeout
(a hang fails the example, whose steps hypothesis prints with a ``@reproduce_failure``
line), a wall-clock budget (once spent, the steps left do nothing: a slow machine runs
fewer examples, it does not fail), and pytest-timeout's ``thread`` method for a hang
nothing else stops (its ``signal`` method raises ``Failed``, which hypothesis catches
and then replays the example, which hangs again). ``DURABLE_PROPERTY_EXAMPLES=N`` runs
N examples of 50 steps (by hand; ``DURABLE_PROPERTY_BUDGET`` seconds, default 10 per
example).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from durable import Context, ObjectContext, ObjectSharedContext, Service, VirtualObject
from durable.devtool.clock import VirtualClock
from durable.devtool.engine import Engine
from durable.devtool.lifecycle import TERMINAL, Status
from durable.devtool.store import Store, queries
from durable.devtool.workers import InlineLink
from durable.messages import (
    Abort,
    Ack,
    AttemptFailed,
    Completion,
    EntryKind,
    Failure,
    NewEntry,
    Output,
    Start,
    Suspend,
)
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

HEAVY = int(os.environ.get("DURABLE_PROPERTY_EXAMPLES", "0"))
EXAMPLES = HEAVY or 12
STEPS = 50 if HEAVY else 25
# CI: ~20 s on a quiet 2-core machine; by hand: about 5 s per example of 50 steps, doubled
BUDGET_S = float(os.environ.get("DURABLE_PROPERTY_BUDGET", 10 * HEAVY)) if HEAVY else 60.0
STEP_TIMEOUT_S = 30.0  # one step (a hang: fails the example, with its steps)

# a step starts before the budget ends, and may take STEP_TIMEOUT_S; then teardown
pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUDGET_S + 90, method="thread")]

KEYS = ("k0", "k1", "k2")
counter = VirtualObject("PropCounter")
helper = Service("PropHelper")


@helper.handler()
async def double(ctx: Context, n: int) -> int:
    value = await ctx.run("double", lambda: n * 2)
    await ctx.sleep(timedelta(seconds=3))
    return value


@counter.handler()
async def add(ctx: ObjectContext, req: dict[str, Any]) -> int:
    amount = await ctx.run("amount", lambda: int(req["amount"]))
    if req["flaky"] and ctx.request().attempt == 1:
        raise RuntimeError("first attempts fail (a retryable error)")
    if req["call"]:
        await ctx.service_call(double, arg=amount)
    if req["sleep"]:
        await ctx.sleep(timedelta(seconds=req["sleep"]))
    if req["wait"]:
        _aw_id, fut = ctx.awakeable()
        await fut
    # no await from the read to the return: a cancel or kill ends the call before it
    total = (await ctx.get("count", type_hint=int) or 0) + amount
    ctx.set("count", total)
    return total


@counter.handler(kind="shared")
async def peek(ctx: ObjectSharedContext, req: dict[str, Any]) -> int:
    if req["sleep"]:
        await ctx.sleep(timedelta(seconds=req["sleep"]))
    return await ctx.get("count", type_hint=int) or 0


SERVICES = {counter.name: counter, helper.name: helper}
EXCLUSIVE = {(counter.name, "add")}
requests = st.fixed_dictionaries(
    {
        "amount": st.integers(1, 5),
        "sleep": st.sampled_from([0, 0, 5, 60]),
        "wait": st.booleans(),
        "call": st.booleans(),
        "flaky": st.sampled_from([False, False, True]),
    }
)


class Watch:
    """What the link saw: who executes or holds each key, what the handlers were told.

    ``status_of(id)`` is the engine's live status of an invocation (None: finished).
    """

    def __init__(self, status_of: Callable[[str], str | None]) -> None:
        self.status_of = status_of
        self.executing: dict[tuple[str, str], dict[str, tuple[Any, int]]] = {}
        self.started: dict[tuple[str, str], set[str]] = {}  # exclusive ones, ever
        self.dispatched: set[str] = set()  # every invocation ever started (calls too)
        self.violations: list[str] = []
        self.entries: dict[tuple[str, int, int], tuple[EntryKind, str | None, Any]] = {}
        # (invocation, index) -> (kind, name, result or failure) the handler was told
        self.told: dict[tuple[str, int], tuple[EntryKind, str | None, Any]] = {}
        self.starts = 0

    def _key(self, msg: Start) -> tuple[str, str] | None:
        if (msg.service, msg.handler) in EXCLUSIVE:
            return (msg.service, msg.key or "")
        return None

    def _release(self, inv_id: str, epoch: int | None = None, link: Any = None) -> None:
        for runs in self.executing.values():
            got = runs.get(inv_id)
            if (
                got is not None
                and (epoch is None or got[1] == epoch)
                and (link is None or got[0] is link)
            ):
                del runs[inv_id]

    def sent(self, link: Any, msg: Any) -> None:
        if isinstance(msg, Start):
            self.starts += 1
            self.dispatched.add(msg.invocation_id)
            for e in msg.journal[1:]:  # the input: the submission's answer says if it counts
                if e.completed:
                    self.tell(msg.invocation_id, e.index, e.kind, e.name, (e.result, e.failure))
            k = self._key(msg)
            if k is None:
                return
            runs = self.executing.setdefault(k, {})
            others = sorted(i for i in runs if i != msg.invocation_id)
            if others:
                self.violations.append(
                    f"two exclusive invocations of key {k} execute at once: {msg.invocation_id} "
                    f"started while {others} still run"
                )
            runs[msg.invocation_id] = (link, msg.epoch)
            # one that ever started holds the key until it ends (suspended, backing off
            # or paused included), as a key's inbox does in Restate
            started = self.started.setdefault(k, set())
            holders = {}
            for i in started - {msg.invocation_id}:
                status = self.status_of(i)
                if status is not None and Status(status) not in TERMINAL:
                    holders[i] = status
            if holders:
                self.violations.append(
                    f"{msg.invocation_id} started on key {k} while {holders} hold it"
                )
            started.add(msg.invocation_id)
        elif isinstance(msg, Abort):
            self._release(msg.invocation_id, msg.epoch)
        elif isinstance(msg, Ack):
            got = self.entries.get((msg.invocation_id, msg.epoch, msg.index))
            if got is not None:
                self.tell(msg.invocation_id, msg.index, *got)
        elif isinstance(msg, Completion):
            # the kind and name come from the journal this index was appended with
            self.tell(msg.invocation_id, msg.index, None, None, (msg.result, msg.failure))

    def emitted(self, link: Any, msg: Any) -> None:
        if isinstance(msg, NewEntry):
            e = msg.entry
            outcome = (e.result, e.failure) if e.completed else None
            self.entries[(msg.invocation_id, msg.epoch, e.index)] = (e.kind, e.name, outcome)
        elif isinstance(msg, (Output, Suspend, AttemptFailed)):
            self._release(msg.invocation_id, msg.epoch, link)

    def tell(
        self, inv_id: str, index: int, kind: EntryKind | None, name: str | None, outcome: Any
    ) -> None:
        """Record what the handler was told of an entry (kind None: not known here)."""
        old = self.told.get((inv_id, index))
        if old is not None:
            if kind is None:
                kind, name = old[0], old[1]
            if outcome is None:
                outcome = old[2]
        self.told[(inv_id, index)] = (kind, name, outcome)

    def link_gone(self, link: Any) -> None:
        for runs in self.executing.values():
            for inv_id in [i for i, (lk, _e) in runs.items() if lk is link]:
                del runs[inv_id]


class Gate:
    """Holds the writer thread once it has logged a group and told its submitters, before
    it puts anything into DuckDB: what the engine queues meanwhile is not logged."""

    def __init__(self, writer: Any) -> None:
        self.held, self.release = threading.Event(), threading.Event()
        self._holding = False
        answer = writer._on_done

        def answer_then_wait(results: Any) -> None:
            answer(results)
            if self._holding:
                self._holding = False
                self.held.set()
                self.release.wait(10)

        writer._on_done = answer_then_wait

    def hold(self) -> None:
        self._holding = True


class WatchedLink(InlineLink):
    """The inline link, telling a :class:`Watch` about every message both ways."""

    def __init__(self, engine: Engine, watch: Watch) -> None:
        super().__init__(engine, SERVICES, 0.0)
        self.watch = watch

    def send(self, msg: Any) -> None:
        self.watch.sent(self, msg)
        super().send(msg)

    def _emit(self, msg: Any) -> None:
        self.watch.emitted(self, msg)
        super()._emit(msg)


class EngineMachine(RuleBasedStateMachine):
    path: Path  # set per test run
    deadline = 0.0  # time.monotonic() past which no step starts
    out_of_time = False
    crash_stats = [0, 0]  # crashes, crashes that lost queued writes

    def __init__(self) -> None:
        super().__init__()
        self.opened = False
        self.clock = VirtualClock()
        self.file = str(EngineMachine.path / f"m{os.urandom(6).hex()}.duckdb")
        self.watch = Watch(lambda inv_id: self.engine.live_status(inv_id))
        self.acked: dict[str, tuple[str, str, dict[str, Any]]] = {}  # id -> key, handler, req
        self.settled = True
        self.crashes = 0
        self.broken = True  # until the store and engine are open: teardown checks nothing
        if self._spent():
            return
        self.loop = asyncio.new_event_loop()
        self._run(self._open())

    # -- plumbing
    def _spent(self) -> bool:
        """Whether the run's wall-clock budget is spent: the steps left do nothing."""
        if time.monotonic() > EngineMachine.deadline:
            EngineMachine.out_of_time = True
        return EngineMachine.out_of_time

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, STEP_TIMEOUT_S))

    async def _open(self) -> None:
        self.store = await asyncio.to_thread(Store.open, self.file)
        assert self.store.writer is not None
        self.gate = Gate(self.store.writer)
        self.engine = Engine(self.store, self.clock)
        await self.engine.start()
        self.link = WatchedLink(self.engine, self.watch)
        self.engine.set_link(self.link, {s.name: s.info() for s in SERVICES.values()})
        self.settled = False
        self.broken = False
        self.opened = True

    def _quiet(self) -> bool:
        if not self.engine.idle():
            return False
        return not any(ex.bodies_running > 0 for ex in self.link.executors.values())

    async def _settle(self) -> None:
        quiet = 0
        for _ in range(3000):
            await self.engine.barrier()
            for _ in range(5):
                await asyncio.sleep(0)
            quiet = quiet + 1 if self._quiet() else 0
            if quiet >= 3:
                self.settled = True
                return
            if quiet == 0:
                await asyncio.sleep(0.001)
        raise AssertionError("the engine never settled")

    async def _turns(self, n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)
        self.settled = False

    async def _advance(self, seconds: float) -> None:
        target = self.clock.now() + seconds
        while True:
            await self._settle()
            at = self.engine.next_timer_at()
            if at is None or at > target + 0.001:
                break
            if at > self.clock.now():
                self.clock.advance(at - self.clock.now())
            self.engine.poke_timers()
            await asyncio.sleep(0)
        if target > self.clock.now():
            self.clock.advance(target - self.clock.now())
        self.engine.poke_timers()
        await self._settle()

    def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Read the store from this thread while the loop is still (the writer first puts
        every committed write into DuckDB)."""
        assert self.store.writer is not None
        done = threading.Event()
        self.store.writer.flush(done.set)
        assert done.wait(10), "the store's writer did not answer within 10 s"
        return self.store.read_sync(fn, *args)

    def _row(self, inv_id: str) -> Any:
        return self.engine.live_row(inv_id) or self._read(queries.invocation, inv_id)

    def _journal(self, inv_id: str) -> list[Any]:
        live = self.engine.live_journal(inv_id)
        return live if live is not None else self._read(queries.journal, inv_id)

    async def _resolve_all(self) -> int:
        pending = await self.store.read(queries.pending_awakeables)
        for aw_id, *_ in pending:
            await self.engine.resolve_awakeable(aw_id, "null", None)
        await self._settle()
        return len(pending)

    def _drop_loop(self) -> None:
        """Everything on the old loop stops where it is, as in a killed process."""
        loop = self.loop
        loop.set_exception_handler(lambda _loop, _ctx: None)
        for _ in range(5):  # cancelled tasks may start others: cancel those too
            tasks = asyncio.all_tasks(loop)
            if not tasks:
                break
            for t in tasks:
                t.cancel()
            loop.run_until_complete(asyncio.wait(tasks, timeout=5))
        loop.close()

    # -- rules
    @rule(key=st.sampled_from(KEYS), req=requests, delay=st.sampled_from([0, 0, 0, 30]))
    def submit(self, key: str, req: dict[str, Any], delay: int) -> None:
        if self._spent():
            return

        async def go() -> str:
            inv_id, _ = await self.engine.submit(
                counter.name, "add", key, json.dumps(req), {}, None, float(delay)
            )
            await self._turns(2)
            return inv_id

        self.acked[self._run(go())] = (key, "add", req)

    @rule(key=st.sampled_from(KEYS), sleep=st.sampled_from([0, 5]))
    def submit_shared(self, key: str, sleep: int) -> None:
        if self._spent():
            return
        req = {"sleep": sleep}

        async def go() -> str:
            inv_id, _ = await self.engine.submit(counter.name, "peek", key, json.dumps(req))
            await self._turns(2)
            return inv_id

        self.acked[self._run(go())] = (key, "peek", req)

    @rule(n=st.integers(1, 40))
    def run_a_few_turns(self, n: int) -> None:
        if self._spent():
            return
        self._run(self._turns(n))

    @rule()
    def settle(self) -> None:
        if self._spent():
            return
        self._run(self._settle())

    @rule(seconds=st.sampled_from([1, 4, 10, 100]))
    def advance(self, seconds: int) -> None:
        if self._spent():
            return
        self._run(self._advance(seconds))

    @rule(reject=st.booleans(), settle=st.booleans())
    def complete_awakeable(self, reject: bool, settle: bool) -> None:
        if self._spent():
            return

        async def go() -> None:
            pending = await self.store.read(queries.pending_awakeables)
            if pending:
                failure = Failure(500, "rejected by the test") if reject else None
                await self.engine.resolve_awakeable(
                    pending[0][0], None if reject else "null", failure
                )
            await (self._settle() if settle else self._turns(3))

        self._run(go())

    @precondition(lambda self: bool(self.acked))
    @rule(data=st.data(), how=st.sampled_from(["cancel", "kill"]), settle=st.booleans())
    def stop_one(self, data: st.DataObject, how: str, settle: bool) -> None:
        if self._spent():
            return
        inv_id = data.draw(st.sampled_from(sorted(self.acked)))

        async def go() -> None:
            row = await self.engine.row(inv_id)
            if row is not None and row.status not in TERMINAL:
                await getattr(self.engine, how)(inv_id)
            await (self._settle() if settle else self._turns(3))

        self._run(go())

    @rule()
    def reload(self) -> None:
        if self._spent():
            return

        async def go() -> None:
            old = self.link
            self.link = WatchedLink(self.engine, self.watch)
            self.engine.set_link(self.link, {s.name: s.info() for s in SERVICES.values()})
            self.engine.move_running(old)
            await old.stop()
            self.watch.link_gone(old)
            await self._turns(3)

        self._run(go())

    @rule()
    def restart_cleanly(self) -> None:
        if self._spent():
            return

        async def go() -> None:
            self.broken = True
            await self.link.stop()
            self.watch.link_gone(self.link)
            await self.engine.stop()
            await asyncio.to_thread(self.store.close)
            await self._open()
            await self._turns(3)

        self._run(go())

    @rule(
        in_flight=st.integers(0, 30),
        unlogged=st.integers(0, 30),
        unacked=st.booleans(),
        key=st.sampled_from(KEYS),
    )
    def crash_and_recover(self, in_flight: int, unlogged: int, unacked: bool, key: str) -> None:
        """The loop runs ``in_flight`` turns (groups are logged, not yet in DuckDB); then
        the writer is held after its next commit while the loop runs ``unlogged`` more
        (the engine queues writes it cannot log; ``unacked``: a submission that is not
        waited for); then the process dies, and a new one recovers from the files."""
        if self._spent():
            return
        self._run(self._turns(in_flight))
        self.gate.hold()
        assert self.store.writer is not None
        self.store.writer.submit([])  # the writer stops in the gate after this one
        assert self.gate.held.wait(10), "the store's writer did not answer within 10 s"

        async def queue_more() -> None:
            if unacked:
                req = {"amount": 1, "sleep": 0, "wait": False, "call": False, "flaky": False}
                await self.engine.submit(
                    counter.name, "add", key, json.dumps(req), durable_ack=False
                )
            await self._turns(unlogged)

        self._run(queue_more())
        queued = self.store.writer._queue.qsize()  # never logged: this crash loses them
        self.broken = True
        crash = threading.Thread(target=self.store.abandon)
        crash.start()
        time.sleep(0.02)  # abandon() marks the writer before it is let go
        self.gate.release.set()
        crash.join(30)
        assert not crash.is_alive(), "the store was not released within 30 s"
        self.watch.link_gone(self.link)
        self._drop_loop()
        self.crashes += 1
        EngineMachine.crash_stats[0] += 1
        EngineMachine.crash_stats[1] += bool(queued)
        self.loop = asyncio.new_event_loop()
        self._run(self._open())
        self._run(self._turns(3))

    # -- invariants
    @invariant()
    def one_writer_per_key(self) -> None:
        if not self.opened:
            return
        assert not self.watch.violations, self.watch.violations[0]
        running: dict[str, list[str]] = {}
        for inv_id, row in self.engine.snapshot().rows.items():
            if row.status == Status.RUNNING.value and row.handler_kind == "exclusive":
                running.setdefault(row.key, []).append(inv_id)
        assert all(len(v) <= 1 for v in running.values()), running

    @invariant()
    def nothing_acknowledged_is_lost(self) -> None:
        if not self.opened:
            return
        journals: dict[str, list[Any]] = {}
        for inv_id in self.acked:
            row = self._row(inv_id)
            assert row is not None, f"acknowledged {inv_id} lost (crashes: {self.crashes})"
            journal = journals[inv_id] = self._journal(inv_id)
            assert [e.index for e in journal] == list(range(len(journal))), journal
            assert journal and journal[0].kind == EntryKind.INPUT, journal
        for inv_id in self.watch.dispatched - set(self.acked):  # callees, unacknowledged
            journal = journals[inv_id] = self._journal(inv_id)
            assert [e.index for e in journal] == list(range(len(journal))), journal
            assert not journal or journal[0].kind == EntryKind.INPUT, journal
        for (inv_id, index), (kind, name, outcome) in self.watch.told.items():
            journal = journals.get(inv_id)
            if journal is None:
                journal = journals[inv_id] = self._journal(inv_id)
            where = f"{inv_id} entry {index} (crashes: {self.crashes})"
            assert index < len(journal), f"{where}: told to the handler, then lost"
            e = journal[index]
            if kind is not None:
                assert (e.kind, e.name) == (kind, name), f"{where}: {e} is not {kind} {name}"
            if outcome is not None:
                assert e.completed and (e.result, e.failure) == outcome, (
                    f"{where}: the handler was told {outcome}, the journal says {e}"
                )

    @invariant()
    def every_invocation_ends_or_waits_on_something_named(self) -> None:
        if not self.opened or not self.settled:
            return
        for inv_id in self.acked:
            row = self._row(inv_id)
            st_ = Status(row.status)
            what = f"{inv_id} {row.handler} is {st_.value}"
            if st_ in TERMINAL:
                continue
            if st_ is Status.RUNNING:
                assert inv_id in self.link.executors, f"{what} but no worker runs it"
            elif st_ is Status.PENDING:
                assert self.engine.queue_position(inv_id), f"{what} in no key queue"
                owner = self.engine.snapshot().key_owner.get((row.service, row.key))
                assert owner is not None and owner != inv_id, f"{what}; the key has no owner"
                assert Status(self._row(owner).status) not in TERMINAL, f"{what} behind {owner}"
            elif st_ is Status.SCHEDULED:
                assert row.scheduled_at is not None, what
            elif st_ is Status.SUSPENDED:
                waits = json.loads(row.waiting_on or "[]")
                journal = self._journal(inv_id)
                assert waits, f"{what} on nothing"
                assert any(not journal[i].completed for i in waits), (
                    f"{what} on entries {waits}, all completed: nobody wakes it"
                )
            elif st_ is Status.BACKING_OFF:
                assert row.next_retry_at is not None and row.last_error, what
            elif st_ is Status.PAUSED:
                assert row.last_error, what
            else:
                raise AssertionError(f"{what} after the engine settled: nothing moves it")

    def teardown(self) -> None:
        if not self.opened:  # out of time, or the first open failed
            if hasattr(self, "loop") and not self.loop.is_closed():
                self._drop_loop()
            return
        if self.broken or EngineMachine.out_of_time:  # failed half-way, or no time: let go
            if not self.loop.is_closed():
                self._drop_loop()
            try:
                self.store.abandon()
            except Exception:
                pass
            return
        try:

            async def go() -> None:
                for _ in range(20):
                    await self._advance(1000)
                    if not await self._resolve_all():
                        break
                await self._advance(1000)
                rows = {i: self._row(i) for i in self.acked}
                others = (self._row(i) for i in self.watch.dispatched - set(self.acked))
                unfinished = {
                    r.id: r.status
                    for r in [*rows.values(), *others]
                    if r is not None and r.status not in TERMINAL
                }
                assert not unfinished, f"invocations that never ended: {unfinished}"
                for key in KEYS:
                    state = await self.store.read(queries.state, counter.name, key)
                    got = json.loads(state["count"]) if "count" in state else 0
                    want = sum(
                        req["amount"]
                        for i, (k, handler, req) in self.acked.items()
                        if k == key and handler == "add" and _succeeded(rows[i])
                    )
                    assert got == want, f"key {key}: counter {got}, completed adds {want}"
                await self.link.stop()
                await self.engine.stop()
                await asyncio.to_thread(self.store.close)

            self._run(go())
        finally:
            if not self.loop.is_closed():
                self._drop_loop()


def _succeeded(row: Any) -> bool:
    return row.status == Status.COMPLETED.value and row.failure_code is None


def _settings() -> settings:
    phases = [Phase.explicit, Phase.reuse, Phase.generate]  # no Phase.shrink: see above
    return settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )


def test_engine_machine(tmp_path: Path) -> None:
    EngineMachine.path = tmp_path
    EngineMachine.deadline = time.monotonic() + BUDGET_S
    EngineMachine.crash_stats = [0, 0]
    EngineMachine.out_of_time = False
    run_state_machine_as_test(EngineMachine, settings=_settings())
    print("crashes, crashes that lost queued writes:", EngineMachine.crash_stats)
    if EngineMachine.out_of_time:  # the machine is slow, not wrong: say so, do not fail
        print(f"the {BUDGET_S:.0f} s budget ran out: the last examples did nothing")


def test_the_key_check_catches_a_double_dispatch(tmp_path: Path, monkeypatch) -> None:
    """The one-writer check is not vacuous: with key queues that never say busy, a
    second exclusive call starts while the first, suspended, holds the key."""
    from durable.devtool.engine.keys import KeyQueues

    monkeypatch.setattr(KeyQueues, "busy", lambda self, k: False)
    EngineMachine.path = tmp_path
    EngineMachine.deadline = time.monotonic() + 60
    machine = EngineMachine()
    try:
        waits = {"amount": 1, "sleep": 0, "wait": True, "call": False, "flaky": False}
        machine.submit("k0", waits, 0)
        machine.settle()
        machine.one_writer_per_key()
        machine.submit("k0", dict(waits, wait=False), 0)
        machine.settle()
        with pytest.raises(AssertionError, match="hold it"):
            machine.one_writer_per_key()
    finally:
        machine.broken = True
        machine.teardown()


def test_the_loss_check_catches_an_acknowledged_write_that_was_not_durable(
    tmp_path: Path, monkeypatch
) -> None:
    """The no-loss check is not vacuous: with an operation log that writes nothing (and
    no early apply into DuckDB), a crash loses an acknowledged call and its step."""
    from durable.devtool.store import writer as writer_module
    from durable.devtool.store.oplog import OpLog

    monkeypatch.setattr(OpLog, "append", lambda self, seq, payload: None)
    monkeypatch.setattr(writer_module, "_APPLY_AFTER_S", 3600.0)
    EngineMachine.path = tmp_path
    EngineMachine.deadline = time.monotonic() + 60
    machine = EngineMachine()
    try:

        async def call() -> str:
            inv_id, _ = await machine.engine.submit(helper.name, "double", None, "2")
            for _ in range(500):  # until the step's Ack reached the handler
                if (inv_id, 1) in machine.watch.told:
                    break
                await asyncio.sleep(0.01)
            return inv_id

        inv_id = machine._run(call())
        machine.acked[inv_id] = ("", "double", {})
        assert (inv_id, 1) in machine.watch.told  # the step's Ack reached the handler
        machine.crash_and_recover(0, 0, False, "k0")
        with pytest.raises(AssertionError, match=f"acknowledged {inv_id} lost"):
            machine.nothing_acknowledged_is_lost()
    finally:
        machine.broken = True
        machine.teardown()
