"""Stateful property test of the real engine: random event orders, invariants after each.

Hypothesis submits calls to an object handler on 3 keys, advances the virtual clock,
resolves awakeables, cancels and kills, reloads the worker link and crashes and
recovers (a new Store and Engine on the same DuckDB file), and checks after every step:
one running writer per key; every acknowledged submission still exists; every journal
is indexed 0..n-1 with its input first; every unfinished invocation is running, queued
for a reason, suspended on named entries or paused/backing-off with an error. At the
end, with everything resolved and the clock far ahead, every invocation has ended and
each key's counter equals the sum of its completed adds.
``DURABLE_PROPERTY_EXAMPLES`` raises the number of event sequences for a long run.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from durable import ObjectContext, VirtualObject
from durable.devtool.clock import VirtualClock
from durable.devtool.engine import Engine
from durable.devtool.lifecycle import TERMINAL, Status
from durable.devtool.store import Store, queries
from durable.devtool.workers import InlineLink
from durable.messages import EntryKind
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

pytestmark = [pytest.mark.slow, pytest.mark.timeout(110)]

KEYS = ("k0", "k1", "k2")
counter = VirtualObject("PropCounter")


@counter.handler()
async def add(ctx: ObjectContext, req: dict[str, Any]) -> int:
    amount = await ctx.run("amount", lambda: int(req["amount"]))
    if req["sleep"]:
        await ctx.sleep(timedelta(seconds=req["sleep"]))
    if req["wait"]:
        _aw_id, fut = ctx.awakeable()
        await fut
    # no await from the read to the return: a cancel or kill ends the call before it
    total = (await ctx.get("count", type_hint=int) or 0) + amount
    ctx.set("count", total)
    return total


SERVICES = {counter.name: counter}
requests = st.fixed_dictionaries(
    {
        "amount": st.integers(1, 5),
        "sleep": st.sampled_from([0, 0, 5, 60]),
        "wait": st.booleans(),
    }
)


class EngineMachine(RuleBasedStateMachine):
    path: Path  # set per test run (a fresh file for each example)

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = VirtualClock()
        self.file = str(EngineMachine.path / f"m{id(self)}-{os.urandom(4).hex()}.duckdb")
        self.acked: dict[str, dict[str, Any]] = {}  # invocation id -> (key, request)
        self.keys: dict[str, str] = {}
        self.crashes = 0
        self.loop.run_until_complete(self._open())

    # -- plumbing
    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    async def _open(self) -> None:
        self.store = await asyncio.to_thread(Store.open, self.file)
        self.engine = Engine(self.store, self.clock)
        await self.engine.start()
        self.link = InlineLink(self.engine, SERVICES, 0.0)
        self.engine.set_link(self.link, {s.name: s.info() for s in SERVICES.values()})
        await self._settle()

    def _idle(self) -> bool:
        if not self.engine.idle() or not self.store.writer._queue.empty():
            return False
        return not any(ex.bodies_running > 0 for ex in self.link.executors.values())

    async def _settle(self) -> None:
        quiet = 0
        for _ in range(2000):
            await self.engine.barrier()
            for _ in range(5):
                await asyncio.sleep(0)
            quiet = quiet + 1 if self._idle() else 0
            if quiet >= 3:
                return
            if quiet == 0:
                await asyncio.sleep(0.001)

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

    async def _rows(self) -> dict[str, Any]:
        await self.engine.barrier()
        out = {}
        for inv_id in self.acked:
            row = self.engine.live_row(inv_id) or await self.store.read(queries.invocation, inv_id)
            out[inv_id] = row
        return out

    async def _resolve_all(self) -> int:
        pending = await self.store.read(queries.pending_awakeables)
        for aw_id, *_ in pending:
            await self.engine.resolve_awakeable(aw_id, "null", None)
        await self._settle()
        return len(pending)

    # -- rules
    @rule(key=st.sampled_from(KEYS), req=requests)
    def submit(self, key: str, req: dict[str, Any]) -> None:
        async def go() -> str:
            inv_id, _ = await self.engine.submit(
                counter.name, "add", key, json.dumps(req), {}, None, 0.0
            )
            await self._settle()
            return inv_id

        inv_id = self._run(go())
        self.acked[inv_id] = req
        self.keys[inv_id] = key

    @rule(seconds=st.sampled_from([1, 10, 100]))
    def advance(self, seconds: int) -> None:
        self._run(self._advance(seconds))

    @rule()
    def resolve_one(self) -> None:
        async def go() -> None:
            pending = await self.store.read(queries.pending_awakeables)
            if pending:
                await self.engine.resolve_awakeable(pending[0][0], "null", None)
            await self._settle()

        self._run(go())

    @precondition(lambda self: bool(self.acked))
    @rule(data=st.data(), how=st.sampled_from(["cancel", "kill"]))
    def stop_one(self, data: st.DataObject, how: str) -> None:
        inv_id = data.draw(st.sampled_from(sorted(self.acked)))

        async def go() -> None:
            row = await self.engine.row(inv_id)
            if row is not None and row.status not in TERMINAL:
                await getattr(self.engine, how)(inv_id)
            await self._settle()

        self._run(go())

    @rule()
    def reload(self) -> None:
        async def go() -> None:
            old = self.link
            self.link = InlineLink(self.engine, SERVICES, 0.0)
            self.engine.set_link(self.link, {s.name: s.info() for s in SERVICES.values()})
            self.engine.move_running(old)
            await old.stop()
            await self._settle()

        self._run(go())

    @rule()
    def crash_and_recover(self) -> None:
        async def go() -> None:
            # no clean shutdown of the engine: its tasks and handlers are dropped where
            # they are; only the file is released so that it can be opened again
            await self.link.stop()
            await self.engine.stop()
            await asyncio.to_thread(self.store.close)
            await self._open()

        self.crashes += 1
        self._run(go())

    # -- invariants
    @invariant()
    def one_writer_per_key(self) -> None:
        running: dict[str, list[str]] = {}
        for inv_id, row in self.engine.snapshot().rows.items():
            if row.status == Status.RUNNING.value and row.handler_kind == "exclusive":
                running.setdefault(row.key, []).append(inv_id)
        assert all(len(v) <= 1 for v in running.values()), running

    @invariant()
    def acknowledged_exist_journals_ordered_and_waits_named(self) -> None:
        async def go() -> None:
            rows = await self._rows()
            for inv_id, row in rows.items():
                assert row is not None, f"acknowledged {inv_id} lost (crashes: {self.crashes})"
                journal = self.engine.live_journal(inv_id) or await self.store.read(
                    queries.journal, inv_id
                )
                assert [e.index for e in journal] == list(range(len(journal))), journal
                assert journal and journal[0].kind == EntryKind.INPUT, journal
                st_ = Status(row.status)
                if st_ in TERMINAL or st_ is Status.RUNNING:
                    continue
                if st_ is Status.PENDING:
                    assert self.engine.queue_position(inv_id), f"{inv_id} pending for nothing"
                elif st_ is Status.SCHEDULED:
                    assert row.scheduled_at is not None
                elif st_ is Status.SUSPENDED:
                    assert row.waiting_on and json.loads(row.waiting_on), row
                elif st_ in (Status.PAUSED, Status.BACKING_OFF):
                    assert row.last_error, row
                else:
                    assert st_ is Status.READY, row

        self._run(go())

    def teardown(self) -> None:
        try:

            async def go() -> None:
                for _ in range(20):
                    await self._advance(1000)
                    if not await self._resolve_all():
                        break
                await self._advance(1000)
                rows = await self._rows()
                unfinished = {i: r.status for i, r in rows.items() if r.status not in TERMINAL}
                assert not unfinished, f"invocations that never ended: {unfinished}"
                for key in KEYS:
                    state = await self.store.read(queries.state, counter.name, key)
                    got = json.loads(state["count"]) if "count" in state else 0
                    want = sum(
                        self.acked[i]["amount"]
                        for i, r in rows.items()
                        if self.keys[i] == key and r.status == Status.COMPLETED.value
                    )
                    assert got == want, f"key {key}: counter {got}, completed adds {want}"
                await self.link.stop()
                await self.engine.stop()
                await asyncio.to_thread(self.store.close)

            self._run(go())
        finally:
            self.loop.close()


def _examples(default: int) -> int:
    return int(os.environ.get("DURABLE_PROPERTY_EXAMPLES", default))


def test_engine_machine(tmp_path: Path) -> None:
    EngineMachine.path = tmp_path
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        EngineMachine,
        settings=settings(
            max_examples=_examples(25),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
