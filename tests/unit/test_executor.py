"""Unit tests of the replay engine (durable.executor), driven message by message.

No process, no HTTP, no store: a small in-test driver plays the runtime. It runs
``Executor.run()`` as a task, records what the executor emits, answers every
``NewEntry(needs_ack=True)`` with an ``Ack`` (as the runtime does once the entry is
committed), and lets a test complete remote entries (sleep, awakeable, call) with a
``Completion``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import durable
import pydantic
import pytest
from durable import serde
from durable.exceptions import CancelledError
from durable.executor import Executor
from durable.messages import (
    Abort,
    Ack,
    AttemptFailed,
    Completion,
    EntryKind,
    Failure,
    JournalEntry,
    NewEntry,
    Output,
    Start,
    Suspend,
)

INV = "inv_test0000000000000000000001"
WAIT = 5.0  # seconds: upper bound for anything a test waits on (it never takes that long)


# -- types for the serde round trips (module level, so type hints resolve)
@dataclasses.dataclass
class Item:
    sku: str
    qty: int


@dataclasses.dataclass
class Order:
    id: str
    items: list[Item]
    note: str | None = None


@dataclasses.dataclass
class Stamped:
    at: datetime
    label: str


class Receipt(pydantic.BaseModel):
    order_id: str
    total: int
    lines: list[str] = []


# -- the driver
class Driver:
    """Plays the runtime for one Executor attempt."""

    def __init__(
        self,
        fn: Callable[..., Any],
        arg: Any = None,
        *,
        input_json: str | None = None,
        recorded: tuple[JournalEntry, ...] | list[JournalEntry] = (),
        state: dict[str, str] | None = None,
        invocation_id: str = INV,
        key: str | None = None,
        suspend_after: float = WAIT * 2,
        auto_ack: bool = True,
        epoch: int = 3,
    ) -> None:
        self.hdef = fn.__durable_handler__
        payload = input_json if input_json is not None else serde.serialize(arg)
        journal = (JournalEntry(0, EntryKind.INPUT, None, payload, None, None, True), *recorded)
        self.start_msg = Start(
            invocation_id,
            self.hdef.service_name,
            self.hdef.name,
            key,
            journal,
            state=dict(state) if state is not None else None,
            epoch=epoch,
        )
        self.auto_ack = auto_ack
        self.messages: list[Any] = []
        self.acked: list[int] = []
        self._changed = asyncio.Event()
        self.executor = Executor(self.hdef, self.start_msg, self._emit, suspend_after=suspend_after)
        self.task: asyncio.Task | None = None

    # messages out of the executor
    def _emit(self, msg: Any) -> None:
        self.messages.append(msg)
        if isinstance(msg, NewEntry) and msg.needs_ack and self.auto_ack:
            asyncio.get_running_loop().call_soon(self.ack, msg.entry.index)
        self._changed.set()

    # messages into the executor
    def ack(self, index: int) -> None:
        self.acked.append(index)
        self.executor.deliver(Ack(self.start_msg.invocation_id, self.start_msg.epoch, index))

    def complete(
        self, index: int, result: str | None = None, failure: Failure | None = None
    ) -> None:
        self.executor.deliver(
            Completion(self.start_msg.invocation_id, self.start_msg.epoch, index, result, failure)
        )

    def abort(self) -> None:
        self.executor.deliver(Abort(self.start_msg.invocation_id, self.start_msg.epoch))

    # running
    def start(self) -> Driver:
        self.task = asyncio.get_running_loop().create_task(self.executor.run())
        return self

    async def finish(self) -> list[Any]:
        if self.task is None:
            self.start()
        assert self.task is not None
        await asyncio.wait_for(self.task, WAIT)
        return self.messages

    async def wait_for(self, pred: Callable[[list[Any]], bool]) -> None:
        async def loop() -> None:
            while not pred(self.messages):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), WAIT)

    async def wait_entry(self, kind: EntryKind) -> JournalEntry:
        await self.wait_for(
            lambda ms: any(isinstance(m, NewEntry) and m.entry.kind is kind for m in ms)
        )
        return next(
            m.entry for m in self.messages if isinstance(m, NewEntry) and m.entry.kind is kind
        )

    # views
    @property
    def new_entries(self) -> list[NewEntry]:
        return [m for m in self.messages if isinstance(m, NewEntry)]

    @property
    def entries(self) -> list[JournalEntry]:
        return [m.entry for m in self.new_entries]

    @property
    def last(self) -> Any:
        return self.messages[-1]

    def journal(self) -> tuple[JournalEntry, ...]:
        """What the runtime would have recorded after entry 0: the entries emitted."""
        return tuple(self.entries)


async def run_once(fn: Callable[..., Any], arg: Any = None, **kw: Any) -> Driver:
    d = Driver(fn, arg, **kw)
    await d.finish()
    return d


def ok(d: Driver) -> Any:
    """The decoded result of a successful Output (fails the test otherwise)."""
    out = d.last
    assert isinstance(out, Output), f"expected an Output, got {d.messages!r}"
    assert out.failure is None, out.failure
    return json.loads(out.result)


def marker_line(marker: str) -> int:
    lines = Path(__file__).read_text().splitlines()
    hits = [i for i, line in enumerate(lines, 1) if line.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, hits
    return hits[0]


# -- fresh runs and replay
def three_steps(calls: list[str]) -> Callable[..., Any]:
    svc = durable.Service("Steps")

    @svc.handler()
    async def go(ctx: durable.Context, n: int) -> int:
        def step(name: str, value: int) -> int:
            calls.append(name)
            return value

        a = await ctx.run("a", step, "a", n)
        b = await ctx.run("b", step, "b", a + 1)
        c = await ctx.run("c", step, "c", b * 10)
        return c

    return go


async def test_fresh_run_emits_one_entry_per_step_then_output():
    calls: list[str] = []
    d = await run_once(three_steps(calls), 4)

    assert calls == ["a", "b", "c"]
    assert [type(m) for m in d.messages] == [NewEntry, NewEntry, NewEntry, Output]
    assert [(e.index, e.kind, e.name, e.result, e.completed) for e in d.entries] == [
        (1, EntryKind.RUN, "a", "4", True),
        (2, EntryKind.RUN, "b", "5", True),
        (3, EntryKind.RUN, "c", "50", True),
    ]
    assert all(m.needs_ack and m.invocation_id == INV and m.epoch == 3 for m in d.new_entries)
    assert d.acked == [1, 2, 3]
    assert ok(d) == 50
    assert d.last.invocation_id == INV and d.last.epoch == 3


async def test_run_waits_for_the_ack_before_the_handler_proceeds():
    calls: list[str] = []
    d = Driver(three_steps(calls), 1, auto_ack=False).start()
    await d.wait_entry(EntryKind.RUN)
    await asyncio.sleep(0.05)  # time enough for step b, were it not waiting
    assert calls == ["a"]  # step b waits for the commit of step a
    assert len(d.entries) == 1
    d.ack(1)
    await d.wait_for(lambda ms: len([m for m in ms if isinstance(m, NewEntry)]) == 2)
    assert calls == ["a", "b"]
    d.auto_ack = True
    d.ack(2)
    await d.finish()
    assert ok(d) == 20


async def test_replay_of_a_full_journal_runs_no_body_and_emits_no_entry():
    calls: list[str] = []
    first = await run_once(three_steps(calls), 4)
    calls.clear()

    d = await run_once(three_steps(calls), 4, recorded=first.journal())

    assert calls == []
    assert d.new_entries == []
    assert [type(m) for m in d.messages] == [Output]
    assert ok(d) == 50


async def test_replay_of_a_partial_journal_continues_with_new_entries():
    calls: list[str] = []
    first = await run_once(three_steps(calls), 4)
    calls.clear()

    d = await run_once(three_steps(calls), 4, recorded=first.journal()[:1])

    assert calls == ["b", "c"]
    assert [(e.index, e.name, e.result) for e in d.entries] == [(2, "b", "5"), (3, "c", "50")]
    assert ok(d) == 50


async def test_replay_uses_recorded_results_not_new_ones():
    recorded = (
        JournalEntry(1, EntryKind.RUN, "a", None, "41", None, True),
        JournalEntry(2, EntryKind.RUN, "b", None, "42", None, True),
        JournalEntry(3, EntryKind.RUN, "c", None, "43", None, True),
    )
    d = await run_once(three_steps([]), 0, recorded=recorded)
    assert ok(d) == 43


async def test_replay_with_a_different_run_name_is_a_nondeterminism_error():
    calls: list[str] = []
    first = await run_once(three_steps(calls), 1)
    calls.clear()

    svc = durable.Service("Steps")

    @svc.handler()
    async def go(ctx: durable.Context, n: int) -> int:
        def step(name: str) -> int:
            calls.append(name)
            return 0

        await ctx.run("a", step, "a")
        await ctx.run("renamed", step, "renamed")  # nondeterministic-call
        await ctx.run("c", step, "c")
        return 0

    d = await run_once(go, 1, recorded=first.journal())

    assert calls == []
    assert d.new_entries == []
    [failed] = d.messages
    assert isinstance(failed, AttemptFailed)
    assert failed.nondeterminism is True
    assert "entry 2" in failed.error
    assert "run('b')" in failed.error
    assert "run('renamed')" in failed.error
    assert f"{Path(__file__).resolve()}:{marker_line('nondeterministic-call')}" in failed.error


async def test_replay_with_a_different_entry_kind_is_a_nondeterminism_error():
    obj = durable.VirtualObject("Kinds")

    @obj.handler()
    async def go(ctx: durable.ObjectContext) -> None:
        await ctx.get("x")  # the journal recorded a run here

    recorded = (JournalEntry(1, EntryKind.RUN, "x", None, "1", None, True),)
    d = await run_once(go, recorded=recorded, state={}, key="k")
    [failed] = d.messages
    assert isinstance(failed, AttemptFailed) and failed.nondeterminism
    assert "entry 1" in failed.error and "get_state('x')" in failed.error


async def test_nondeterminism_is_reported_even_if_the_handler_catches_it():
    svc = durable.Service("Swallow")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        try:
            await ctx.run("other", lambda: 1)
        except Exception:
            return "swallowed"
        return "unreachable"

    recorded = (JournalEntry(1, EntryKind.RUN, "first", None, "1", None, True),)
    d = await run_once(go, recorded=recorded)
    [failed] = d.messages
    assert isinstance(failed, AttemptFailed) and failed.nondeterminism
    assert "run('first')" in failed.error


async def test_handler_that_stops_before_the_end_of_the_journal_is_nondeterministic():
    calls: list[str] = []
    first = await run_once(three_steps(calls), 1)

    svc = durable.Service("Steps")

    @svc.handler()
    async def go(ctx: durable.Context, n: int) -> int:
        await ctx.run("a", lambda: 0)
        return 0  # the journal holds two more steps

    d = await run_once(go, 1, recorded=first.journal())
    [failed] = d.messages
    assert isinstance(failed, AttemptFailed) and failed.nondeterminism
    assert "entry 2" in failed.error and "run('b')" in failed.error


async def test_replay_of_a_completed_journal_with_its_output_entry_is_fine():
    calls: list[str] = []
    first = await run_once(three_steps(calls), 2)
    out = JournalEntry(4, EntryKind.OUTPUT, None, None, first.last.result, None, True)
    d = await run_once(three_steps(calls), 2, recorded=(*first.journal(), out))
    assert ok(d) == 30
    assert d.new_entries == []


# -- failures
async def test_terminal_error_from_the_handler_is_a_failed_output():
    svc = durable.Service("Fails")

    @svc.handler()
    async def go(ctx: durable.Context) -> None:
        raise durable.TerminalError("order 42 does not exist", status_code=404)

    d = await run_once(go)
    [out] = d.messages
    assert (out.invocation_id, out.epoch, out.result, out.failure) == (
        INV,
        3,
        None,
        Failure(404, "order 42 does not exist"),
    )
    # where it was raised, for the attempts table and the console
    line = _line_of('raise durable.TerminalError("order 42')
    assert out.location.endswith(f"test_executor.py:{line}")
    assert "TerminalError: order 42 does not exist" in out.stack


async def test_plain_exception_fails_the_attempt_with_a_stack():
    svc = durable.Service("Crash")

    @svc.handler()
    async def go(ctx: durable.Context) -> None:
        raise ValueError("boom")

    d = await run_once(go)
    [failed] = d.messages
    assert isinstance(failed, AttemptFailed)
    assert failed.nondeterminism is False
    assert failed.error == "ValueError: boom"
    assert "Traceback" in failed.stack
    assert 'raise ValueError("boom")' in failed.stack
    assert "test_executor.py" in failed.stack
    # the handler's own frame, not the executor's
    line = _line_of('raise ValueError("boom")')
    assert failed.location.endswith(f"test_executor.py:{line}")


def _line_of(text: str) -> int:
    """The line number of the first line of this file holding ``text``."""
    with open(__file__) as f:
        return next(n for n, line in enumerate(f, 1) if text in line and "_line_of" not in line)


async def test_run_body_terminal_error_is_recorded_and_raised_in_the_handler():
    calls = []
    svc = durable.Service("RunFails")

    def body() -> None:
        calls.append(1)
        raise durable.TerminalError("card declined", 402)

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        try:
            await ctx.run("charge", body)
        except durable.TerminalError as e:
            return f"{e.status_code}:{e.message}"
        return "no error"

    d = await run_once(go)
    assert calls == [1]
    [entry] = d.entries
    assert (entry.index, entry.kind, entry.name) == (1, EntryKind.RUN, "charge")
    assert entry.result is None and entry.completed
    assert entry.failure == Failure(402, "card declined")
    assert d.new_entries[0].needs_ack
    assert ok(d) == "402:card declined"

    # on replay the recorded failure is raised again, without running the body
    d2 = await run_once(go, recorded=d.journal())
    assert calls == [1]
    assert ok(d2) == "402:card declined"


async def test_run_with_max_attempts_retries_the_body_then_records_a_failure():
    calls = []
    svc = durable.Service("Flaky")

    def body() -> int:
        calls.append(1)
        raise ConnectionError("no route")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        try:
            await ctx.run("fetch", body, max_attempts=3)
        except durable.TerminalError as e:
            return f"{e.status_code}:{e.message}"
        return "no error"

    d = await run_once(go)
    assert len(calls) == 3
    [entry] = d.entries
    assert entry.failure is not None and entry.failure.code == 500
    assert "after 3 attempts" in entry.failure.message
    assert "ConnectionError: no route" in entry.failure.message
    assert ok(d) == f"500:{entry.failure.message}"


async def test_run_typed_retries_until_the_body_succeeds():
    calls = []
    svc = durable.Service("Flaky2")

    def body(x: int, *, y: int) -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return x + y

    @svc.handler()
    async def go(ctx: durable.Context) -> int:
        opts = durable.RunOptions(max_attempts=5, initial_retry_interval=timedelta(milliseconds=1))
        return await ctx.run_typed("fetch", body, opts, 2, y=3)

    d = await run_once(go)
    assert len(calls) == 3
    assert [(e.name, e.result, e.failure) for e in d.entries] == [("fetch", "5", None)]
    assert ok(d) == 5


async def test_run_body_failure_without_retry_options_fails_the_attempt_unrecorded():
    svc = durable.Service("Once")

    @svc.handler()
    async def go(ctx: durable.Context) -> int:
        return await ctx.run("x", lambda: 1 / 0)

    d = await run_once(go)
    assert d.new_entries == []
    [failed] = d.messages
    assert isinstance(failed, AttemptFailed) and not failed.nondeterminism
    assert failed.error.startswith("ZeroDivisionError")


async def test_run_body_failure_caught_by_the_handler_still_fails_the_attempt():
    calls = []
    svc = durable.Service("Catches")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        try:
            await ctx.run("x", lambda: 1 / 0)
        except ZeroDivisionError:
            pass
        calls.append("after")
        await ctx.run("y", lambda: calls.append("y"))
        return "done"

    d = await run_once(go)  # must not hang: the failed step blocks the journal
    [failed] = [m for m in d.messages if not isinstance(m, NewEntry)]
    assert isinstance(failed, AttemptFailed)
    assert failed.error.startswith("ZeroDivisionError")
    assert "ZeroDivisionError" in failed.stack
    assert all(e.name != "x" for e in d.entries)


async def test_failed_body_of_a_step_the_handler_never_awaits_fails_the_attempt():
    svc = durable.Service("Forgets")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        ctx.run("x", lambda: 1 / 0)
        return "done"

    d = await run_once(go)
    assert isinstance(d.last, AttemptFailed)
    assert not any(isinstance(m, Output) for m in d.messages)


async def test_sync_body_runs_in_a_thread_and_async_body_on_the_loop():
    seen: dict[str, int] = {}
    svc = durable.Service("Threads")

    def sync_body() -> str:
        seen["sync"] = threading.get_ident()
        return "s"

    async def async_body() -> str:
        await asyncio.sleep(0)
        seen["async"] = threading.get_ident()
        return "a"

    @svc.handler()
    async def go(ctx: durable.Context) -> list[str]:
        return [await ctx.run("sync", sync_body), await ctx.run("async", async_body)]

    d = await run_once(go)
    me = threading.get_ident()
    assert seen["sync"] != me
    assert seen["async"] == me
    assert ok(d) == ["s", "a"]


async def test_run_accepts_restate_args_keyword():
    svc = durable.Service("Args")

    @svc.handler()
    async def go(ctx: durable.Context) -> int:
        return await ctx.run("add", lambda a, b: a + b, args=(2, 3))

    d = await run_once(go)
    assert ok(d) == 5


# -- determinism helpers
async def test_random_and_uuid_are_the_same_on_every_execution_of_an_invocation():
    svc = durable.Service("Rand")

    @svc.handler()
    async def go(ctx: durable.Context) -> list[Any]:
        return [
            ctx.random().random(),
            ctx.random().randint(0, 10**9),
            str(ctx.uuid()),
            str(ctx.uuid()),
        ]

    a = ok(await run_once(go))
    b = ok(await run_once(go))
    other = ok(await run_once(go, invocation_id="inv_test0000000000000000000002"))
    assert a == b
    assert a != other
    assert a[2] != a[3]
    assert uuid.UUID(a[2]).version == 4


# -- suspension and remote entries
def sleeper(after: list[str], seconds: float = 90) -> Callable[..., Any]:
    svc = durable.Service("Sleepy")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        await ctx.sleep(timedelta(seconds=seconds))
        after.append("woke")
        return "rested"

    return go


async def test_sleep_emits_an_entry_then_suspends_and_the_task_ends():
    after: list[str] = []
    d = Driver(sleeper(after), suspend_after=0)
    await d.finish()

    assert [type(m) for m in d.messages] == [NewEntry, Suspend]
    [sleep] = d.new_entries
    assert (sleep.entry.index, sleep.entry.kind, sleep.entry.completed) == (
        1,
        EntryKind.SLEEP,
        False,
    )
    assert json.loads(sleep.entry.payload) == {"duration_ms": 90_000}
    assert sleep.needs_ack is False
    assert d.last == Suspend(INV, 3, waiting_on=(1,))
    assert d.task.done() and d.task.exception() is None
    assert after == []

    d.complete(1, "null")  # too late: the attempt is over
    await asyncio.sleep(0)
    assert len(d.messages) == 2 and after == []


async def test_completion_before_suspension_resumes_the_handler():
    after: list[str] = []
    d = Driver(sleeper(after, seconds=1), suspend_after=WAIT * 2).start()
    entry = await d.wait_entry(EntryKind.SLEEP)
    d.complete(entry.index, "null")
    await d.finish()
    assert after == ["woke"]
    assert [type(m) for m in d.messages] == [NewEntry, Output]
    assert ok(d) == "rested"


async def test_resume_after_suspension_replays_the_completed_sleep():
    after: list[str] = []
    first = Driver(sleeper(after), suspend_after=0)
    await first.finish()
    [sleep] = first.entries
    done = dataclasses.replace(sleep, result="null", completed=True)

    d = await run_once(sleeper(after), recorded=(done,), suspend_after=0)
    assert after == ["woke"]
    assert d.new_entries == []
    assert ok(d) == "rested"


async def test_replay_of_an_uncompleted_sleep_suspends_again_without_a_new_entry():
    after: list[str] = []
    recorded = (JournalEntry(1, EntryKind.SLEEP, None, '{"duration_ms": 90000}'),)
    d = await run_once(sleeper(after), recorded=recorded, suspend_after=0)
    assert d.messages == [Suspend(INV, 3, waiting_on=(1,))]
    assert after == []


async def test_a_replayed_timer_waits_for_its_recorded_due_time_not_the_asked_one():
    svc = durable.Service("DueTimes")

    @svc.handler()
    async def go(ctx: durable.Context, seconds: float) -> str:
        await ctx.sleep(timedelta(seconds=seconds))
        return "slept"

    def recorded(due_in_ms: int) -> tuple[JournalEntry, ...]:
        wake = int(time.time() * 1000) + due_in_ms  # the runtime's record of the timer
        payload = json.dumps({"duration_ms": 3_600_000, "wake_at": wake})
        return (JournalEntry(1, EntryKind.SLEEP, None, payload),)

    # asks for 0.1 s, but was recorded due in an hour: waiting in memory is of no use
    d = await run_once(go, 0.1, recorded=recorded(3_600_000), suspend_after=5)
    assert d.messages == [Suspend(INV, 3, waiting_on=(1,))]

    # asks for an hour, but is due in 0.1 s: it stays, as a suspension would not pay off
    d = Driver(go, 3600, recorded=recorded(100), suspend_after=5).start()
    await asyncio.sleep(0.3)
    assert d.messages == []
    d.complete(1, "null")
    await d.finish()
    assert ok(d) == "slept"


async def test_early_completion_during_replay_is_kept():
    after: list[str] = []
    recorded = (
        JournalEntry(1, EntryKind.RUN, "before", None, '"x"', None, True),
        JournalEntry(2, EntryKind.SLEEP, None, '{"duration_ms": 1000}'),
    )
    svc = durable.Service("Early")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        v = await ctx.run("before", lambda: "never runs")
        await ctx.sleep(timedelta(seconds=1))
        after.append("woke")
        return v

    d = Driver(go, recorded=recorded, suspend_after=0)
    d.complete(2, "null")  # arrives before the handler reaches entry 2
    await d.finish()
    assert after == ["woke"]
    assert not any(isinstance(m, Suspend) for m in d.messages)
    assert d.new_entries == []
    assert ok(d) == "x"


async def test_suspend_lists_every_awaited_entry():
    svc = durable.Service("Both")

    @svc.handler()
    async def go(ctx: durable.Context) -> None:
        _, aw = ctx.awakeable()
        await durable.gather(ctx.sleep(timedelta(seconds=5)), aw)

    d = await run_once(go, suspend_after=0)
    assert d.last == Suspend(INV, 3, waiting_on=(1, 2))


async def test_awakeable_resolution_and_rejection():
    svc = durable.Service("Awk")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        aid, fut = ctx.awakeable(type_hint=Item)
        item = await fut
        assert isinstance(item, Item)
        aid2, fut2 = ctx.awakeable()
        try:
            await fut2
        except durable.TerminalError as e:
            return f"{aid.startswith('awk_')} {aid != aid2} {item.sku} {e.status_code} {e.message}"
        return "not rejected"

    d = Driver(go).start()
    e1 = await d.wait_entry(EntryKind.AWAKEABLE)
    assert json.loads(e1.payload)["id"].startswith("awk_")
    d.complete(1, '{"sku": "A-1", "qty": 2}')
    await d.wait_for(lambda ms: len(ms) == 2)
    d.complete(2, failure=Failure(410, "gone"))
    await d.finish()
    assert ok(d) == "True True A-1 410 gone"


async def test_cancellation_completion_raises_cancelled_error():
    svc = durable.Service("Cancelled")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        try:
            await ctx.sleep(timedelta(seconds=1))
        except CancelledError as e:
            await ctx.run("compensate", lambda: "undo")
            raise durable.TerminalError(e.message, e.status_code) from None
        return "slept"

    d = Driver(go).start()
    await d.wait_entry(EntryKind.SLEEP)
    d.complete(1, failure=Failure(409, "cancelled"))
    await d.finish()
    assert [e.name for e in d.entries] == [None, "compensate"]
    assert d.last.failure == Failure(409, "cancelled")


async def test_service_call_emits_a_call_entry_and_returns_the_typed_result():
    other = durable.Service("Billing")

    @other.handler()
    async def bill(ctx: durable.Context, order: Order) -> Receipt:
        raise AssertionError("not run here")

    svc = durable.Service("Caller")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        call = ctx.service_call(bill, Order("o1", [Item("A", 1)]), idempotency_key="k1")
        target = await call.invocation_id()
        receipt = await call
        assert isinstance(receipt, Receipt)
        return f"{target} {receipt.total}"

    d = Driver(go).start()
    entry = await d.wait_entry(EntryKind.CALL)
    assert entry.name == "Billing/bill"
    payload = json.loads(entry.payload)
    assert (
        payload["service"] == "Billing" and payload["handler"] == "bill" and payload["key"] is None
    )
    assert json.loads(payload["input"]) == {
        "id": "o1",
        "items": [{"sku": "A", "qty": 1}],
        "note": None,
    }
    assert payload["idempotency_key"] == "k1"
    d.complete(entry.index, '{"order_id": "o1", "total": 7}')
    await d.finish()
    assert ok(d) == f"{payload['invocation_id']} 7"


async def test_object_send_records_a_completed_one_way_call():
    obj = durable.VirtualObject("Counter")

    @obj.handler()
    async def add(ctx: durable.ObjectContext, n: int) -> None:
        pass

    svc = durable.Service("Sender")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        h = ctx.object_send(add, key="c1", arg=5, send_delay=timedelta(seconds=2))
        return await h.invocation_id()

    d = await run_once(go)
    [entry] = d.entries
    payload = json.loads(entry.payload)
    assert (entry.kind, entry.name, entry.completed) == (
        EntryKind.ONE_WAY_CALL,
        "Counter/add",
        True,
    )
    assert (payload["key"], payload["input"], payload["delay_ms"]) == ("c1", "5", 2000)
    assert ok(d) == payload["invocation_id"]
    # replay returns the recorded id
    d2 = await run_once(go, recorded=d.journal())
    assert ok(d2) == payload["invocation_id"] and d2.new_entries == []


# -- state
def counter_object(log: list[Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    obj = durable.VirtualObject("Cart")

    @obj.handler()
    async def edit(ctx: durable.ObjectContext) -> dict:
        log.append(await ctx.get("a", type_hint=int))
        ctx.set("b", Item("B", 2))
        ctx.clear("a")
        keys = await ctx.state_keys()
        b = await ctx.get("b", type_hint=Item)
        return {"key": ctx.key(), "keys": keys, "a": await ctx.get("a"), "b": dataclasses.asdict(b)}

    @obj.handler(kind="shared")
    async def peek(ctx: durable.ObjectSharedContext) -> str:
        try:
            ctx.set("a", 1)  # type: ignore[attr-defined]
        except durable.TerminalError as e:
            return f"{e.status_code} {e.message}"
        return "allowed"

    return edit, peek


async def test_state_get_set_clear_and_keys_with_eager_state():
    log: list[Any] = []
    edit, _ = counter_object(log)
    d = await run_once(edit, key="cart-1", state={"a": "1", "z": '"zz"'})

    assert log == [1]
    assert ok(d) == {"key": "cart-1", "keys": ["b", "z"], "a": None, "b": {"sku": "B", "qty": 2}}
    assert [(e.index, e.kind, e.name, e.payload, e.result) for e in d.entries] == [
        (1, EntryKind.GET_STATE, "a", None, "1"),
        (2, EntryKind.SET_STATE, "b", '{"sku":"B","qty":2}', None),
        (3, EntryKind.CLEAR_STATE, "a", None, None),
        (4, EntryKind.STATE_KEYS, None, None, '["b", "z"]'),
        (5, EntryKind.GET_STATE, "b", None, '{"sku":"B","qty":2}'),
        (6, EntryKind.GET_STATE, "a", None, None),
    ]
    assert all(e.completed for e in d.entries)
    assert d.executor.state == {"b": '{"sku":"B","qty":2}', "z": '"zz"'}

    # replay answers reads from the journal, not from the (now different) state
    log.clear()
    d2 = await run_once(
        edit, key="cart-1", state={"b": '{"sku":"B","qty":2}'}, recorded=d.journal()
    )
    assert log == [1]
    assert d2.new_entries == []
    assert ok(d2) == ok(d)


async def test_clear_all_state():
    obj = durable.VirtualObject("Wipe")

    @obj.handler()
    async def wipe(ctx: durable.ObjectContext) -> list[str]:
        ctx.clear_all()
        return await ctx.state_keys()

    d = await run_once(wipe, key="k", state={"a": "1", "b": "2"})
    assert ok(d) == []
    assert [e.kind for e in d.entries] == [EntryKind.CLEAR_ALL_STATE, EntryKind.STATE_KEYS]


async def test_set_from_a_shared_handler_raises_terminal_error():
    _, peek = counter_object([])
    d = await run_once(peek, key="k", state={})
    code, message = ok(d).split(" ", 1)
    assert code == "500"
    assert "shared handler Cart/peek" in message
    assert d.new_entries == []


async def test_uncaught_set_from_a_shared_handler_fails_the_invocation():
    obj = durable.VirtualObject("Shared")

    @obj.handler(kind="shared")
    async def write(ctx: durable.ObjectSharedContext) -> None:
        ctx.set("a", 1)  # type: ignore[attr-defined]

    d = await run_once(write, key="k", state={})
    assert isinstance(d.last, Output) and d.last.failure is not None
    assert d.last.failure.code == 500 and "shared" in d.last.failure.message


async def test_state_in_a_service_is_invalid_usage():
    svc = durable.Service("NoState")

    @svc.handler()
    async def go(ctx: durable.Context) -> None:
        await ctx.get("a")  # type: ignore[attr-defined]

    d = await run_once(go)
    assert isinstance(d.last, AttemptFailed)
    assert "InvalidUsageError" in d.last.error and "VirtualObject" in d.last.error


# -- ordering, abort
async def test_entries_are_emitted_in_index_order_when_bodies_finish_out_of_order():
    finished: list[str] = []
    second_done = asyncio.Event()
    svc = durable.Service("Order")

    async def slow() -> str:
        await second_done.wait()
        finished.append("first")
        return "1"

    async def fast() -> str:
        finished.append("second")
        second_done.set()
        return "2"

    @svc.handler()
    async def go(ctx: durable.Context) -> list[str]:
        f1 = ctx.run("first", slow)
        f2 = ctx.run("second", fast)
        return [await f2, await f1]

    d = await run_once(go)
    assert finished == ["second", "first"]
    assert [(e.index, e.name, e.result) for e in d.entries] == [
        (1, "first", '"1"'),
        (2, "second", '"2"'),
    ]
    assert ok(d) == ["2", "1"]


async def test_abort_stops_the_task_and_nothing_more_is_emitted():
    started = asyncio.Event()
    cancelled: list[str] = []
    svc = durable.Service("Stuck")

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append("body")

    @svc.handler()
    async def go(ctx: durable.Context) -> None:
        await ctx.run("first", lambda: 1)
        await ctx.run("stuck", forever)

    d = Driver(go).start()
    await asyncio.wait_for(started.wait(), WAIT)
    before = list(d.messages)
    d.abort()
    await d.finish()
    for _ in range(5):
        await asyncio.sleep(0)
    assert d.messages == before
    assert [e.name for e in d.entries] == ["first"]
    assert cancelled == ["body"]
    assert d.task.exception() is None
    d.complete(2, "null")
    d.ack(2)
    assert d.messages == before


async def test_abort_while_suspended_waiting_emits_nothing():
    after: list[str] = []
    d = Driver(sleeper(after, seconds=1), suspend_after=WAIT * 2).start()
    await d.wait_entry(EntryKind.SLEEP)
    d.abort()
    await d.finish()
    assert [type(m) for m in d.messages] == [NewEntry]
    assert after == []


# -- input and output types
async def test_input_not_matching_the_type_hint_is_a_400():
    svc = durable.Service("Typed")

    @svc.handler()
    async def go(ctx: durable.Context, n: int) -> int:
        return n

    d = await run_once(go, "abc")
    assert isinstance(d.last, Output) and d.last.failure is not None
    assert d.last.failure.code == 400
    assert "Typed/go" in d.last.failure.message

    bad_json = await run_once(go, input_json="{not json")
    assert bad_json.last.failure is not None and bad_json.last.failure.code == 400

    good = await run_once(go, 7)
    assert ok(good) == 7


async def test_dataclass_input_and_pydantic_output_round_trip():
    svc = durable.Service("Shop")
    seen: list[Any] = []

    @svc.handler()
    async def checkout(ctx: durable.Context, order: Order) -> Receipt:
        seen.append(order)
        total = await ctx.run("total", lambda: sum(i.qty for i in order.items))
        return Receipt(order_id=order.id, total=total, lines=[i.sku for i in order.items])

    order = Order("o-7", [Item("A", 2), Item("B", 3)], note="gift")
    d = await run_once(checkout, order)
    assert seen == [order]
    assert isinstance(seen[0].items[0], Item)
    assert serde.deserialize(d.last.result, Receipt) == Receipt(
        order_id="o-7", total=5, lines=["A", "B"]
    )

    bad = await run_once(checkout, {"id": "o-8"})  # items missing
    assert bad.last.failure is not None and bad.last.failure.code == 400


async def test_pydantic_input_validation_error_is_a_400():
    svc = durable.Service("Pyd")

    @svc.handler()
    async def go(ctx: durable.Context, r: Receipt) -> Order:
        return Order(r.order_id, [Item(x, 1) for x in r.lines])

    d = await run_once(go, {"order_id": "o", "total": 3, "lines": ["x"]})
    assert ok(d) == {"id": "o", "items": [{"sku": "x", "qty": 1}], "note": None}
    bad = await run_once(go, {"order_id": "o", "total": "lots"})
    assert bad.last.failure is not None and bad.last.failure.code == 400


async def test_run_results_are_deserialized_with_the_type_hint_on_replay_too():
    svc = durable.Service("Hinted")

    @svc.handler()
    async def go(ctx: durable.Context) -> str:
        o = await ctx.run("load", lambda: Order("o", [Item("A", 1)]), type_hint=Order)
        r = await ctx.run("rcpt", lambda: Receipt(order_id="o", total=1), type_hint=Receipt)
        assert isinstance(o, Order) and isinstance(o.items[0], Item)
        assert isinstance(r, Receipt)
        return f"{o.items[0].sku}{r.total}"

    d = await run_once(go)
    assert ok(d) == "A1"
    d2 = await run_once(go, recorded=d.journal())
    assert d2.new_entries == [] and ok(d2) == "A1"


def test_serde_round_trips_a_dataclass_with_a_datetime():
    value = Stamped(datetime(2024, 5, 1, 12, 30, tzinfo=UTC), "x")
    text = serde.serialize(value)
    assert json.loads(text) == {"at": "2024-05-01T12:30:00+00:00", "label": "x"}
    assert serde.deserialize(text, Stamped) == value


def test_serde_rejects_wrong_json_shapes():
    with pytest.raises(TypeError):
        serde.deserialize('"abc"', int)
    with pytest.raises(TypeError):
        serde.deserialize("true", int)
    with pytest.raises(TypeError):
        serde.deserialize("[1]", Order)
    assert serde.deserialize("3", float) == 3.0 and isinstance(serde.deserialize("3", float), float)
    assert serde.deserialize("null", int | None) is None
    assert serde.deserialize('{"a": [1, 2]}', dict[str, list[int]]) == {"a": [1, 2]}


# -- more of the context
async def test_terminal_error_before_the_end_of_the_journal_is_nondeterministic():
    calls: list[str] = []
    first = await run_once(three_steps(calls), 1)
    svc = durable.Service("Steps")

    @svc.handler()
    async def go(ctx: durable.Context, n: int) -> int:
        await ctx.run("a", lambda: 0)
        raise durable.TerminalError("gave up early")

    d = await run_once(go, 1, recorded=first.journal())
    [failed] = d.messages
    assert isinstance(failed, AttemptFailed) and failed.nondeterminism
    assert "entry 2" in failed.error


async def test_time_is_a_journaled_remote_entry():
    svc = durable.Service("Clock")

    @svc.handler()
    async def go(ctx: durable.Context) -> float:
        return await ctx.time()

    d = Driver(go).start()
    entry = await d.wait_entry(EntryKind.TIME)
    d.complete(entry.index, "1700000000.5")
    await d.finish()
    assert ok(d) == 1700000000.5
    done = dataclasses.replace(entry, result="1700000000.5", completed=True)
    assert ok(await run_once(go, recorded=(done,))) == 1700000000.5


async def test_request_exposes_id_headers_and_raw_body():
    svc = durable.Service("Req")

    @svc.handler()
    async def go(ctx: durable.Context, n: int) -> list[Any]:
        r = ctx.request()
        return [r.id, r.body.decode(), r.attempt]

    assert ok(await run_once(go, 5)) == [INV, "5", 1]


async def test_workflow_promise_value_and_peek():
    wf = durable.Workflow("Signup")

    @wf.main()
    async def run(ctx: durable.WorkflowContext, email: str) -> list[Any]:
        peeked = await ctx.promise("confirmed", type_hint=Item).peek()
        value = await ctx.promise("confirmed", type_hint=Item).value()
        return [peeked, value.sku]

    d = Driver(run, "a@b.c", key="wf-1", state={}).start()
    peek = await d.wait_entry(EntryKind.PEEK_PROMISE)
    assert peek.name == "confirmed"
    d.complete(peek.index, None)
    get = await d.wait_entry(EntryKind.GET_PROMISE)
    d.complete(get.index, '{"sku": "OK", "qty": 1}')
    await d.finish()
    assert ok(d) == [None, "OK"]


async def test_promise_outside_a_workflow_is_invalid_usage():
    svc = durable.Service("NoPromise")

    @svc.handler()
    async def go(ctx: durable.Context) -> None:
        ctx.promise("p")  # type: ignore[attr-defined]

    d = await run_once(go)
    assert isinstance(d.last, AttemptFailed) and "only available in workflows" in d.last.error


async def test_logger_is_quiet_while_replaying(caplog: pytest.LogCaptureFixture):
    svc = durable.Service("Logs")
    log = durable.getLogger("durable.test.replay")

    @svc.handler()
    async def go(ctx: durable.Context) -> None:
        log.warning("before a")
        await ctx.run("a", lambda: 1)
        log.warning("before b")
        await ctx.run("b", lambda: 2)
        log.warning("at the end")

    caplog.set_level("WARNING", logger="durable.test.replay")
    first = await run_once(go)
    assert [r.getMessage() for r in caplog.records] == ["before a", "before b", "at the end"]
    caplog.clear()
    await run_once(go, recorded=first.journal()[:1])
    assert [r.getMessage() for r in caplog.records] == ["before b", "at the end"]


async def test_abort_before_the_run_starts_emits_nothing():
    calls: list[str] = []
    d = Driver(three_steps(calls), 1)
    d.abort()
    await d.finish()
    assert d.messages == [] and calls == []
