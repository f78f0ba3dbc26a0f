"""The replay engine: runs one invocation attempt of a handler against its journal.

It does no I/O of its own. Messages come in through :meth:`Executor.deliver`
(:class:`~durable.messages.Ack`, :class:`~durable.messages.Completion`,
:class:`~durable.messages.Abort`) and go out through the ``emit`` callback given at
construction (:class:`~durable.messages.NewEntry`, :class:`~durable.messages.Suspend`,
:class:`~durable.messages.Output`, :class:`~durable.messages.AttemptFailed`). The
:class:`~durable.host.ExecutorHost` connects ``emit`` to the worker's socket, or to the
engine on the same loop.

Replay: the handler runs from the top; each ctx call takes the next journal index. While
the index is inside the recorded journal, the call is checked against the recorded entry
(kind and name) and answered from it; past the end, a new entry is appended and emitted.
Entries are emitted in index order, even when ``ctx.run`` bodies finish out of order.

The handler's context (:mod:`durable.context_impl`) reaches the executor only through
its public journal methods (``local_entry``, ``remote_entry``, ``run_step``, ``sleep``,
``call``, ``send``, ``awakeable``); ``ctx.run`` bodies run in :mod:`durable.steps`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import random as _random
import secrets
import sys
import time as _time
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import Any

from . import logging as _logging
from . import serde as _serde
from . import traces as _traces
from .context import RunOptions
from .context_impl import ContextImpl
from .definitions import HandlerDef
from .exceptions import (
    CancelledError,
    NonDeterminismError,
    RetryableError,
    SuspendedError,
    TerminalError,
)
from .futures import EntryFuture, JournalCallFuture, JournalFuture, JournalSleepFuture
from .ids import idempotency_scope, idempotent_invocation_id, new_invocation_id
from .messages import (
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
from .payloads import (
    AwakeablePayload,
    CallPayload,
    CombinatorPayload,
    Payload,
    SendPayload,
    SleepPayload,
)
from .steps import StepRunner
from .suspension import Suspension

__all__ = ["Executor", "failure_to_exception"]

_SDK_DIR = os.path.dirname(os.path.abspath(__file__))


def failure_to_exception(failure: Failure) -> TerminalError:
    """The exception a handler sees for a recorded failure."""
    if failure.code == 409 and failure.message.startswith("cancelled"):
        return CancelledError(failure.message)
    return TerminalError(failure.message, failure.code)


def _describe(kind: EntryKind | str, name: str | None) -> str:
    k = kind.value if isinstance(kind, EntryKind) else kind
    return f"{k}({name!r})" if name is not None else k


def _user_location() -> str | None:
    frame: FrameType | None = sys._getframe(1)
    while (
        frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _SDK_DIR
    ):
        frame = frame.f_back
    if frame is None:
        return None
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


class Executor:
    """Runs one attempt of one invocation; see the module docstring."""

    def __init__(
        self,
        hdef: HandlerDef,
        start: Start,
        emit: Callable[[Any], None],
        suspend_after: float = 0.0,
        replay_only: bool = False,
        pulled: bool = False,
    ) -> None:
        self.hdef = hdef
        #: Check the code against the recorded journal only: stop (SuspendedError) at the
        #: first call past its end, so no ``ctx.run`` body runs and nothing is emitted.
        self.replay_only = replay_only
        self.replay_end: int | None = None
        self.start = start
        self._emit_raw = emit
        self.suspend_after = suspend_after
        self.journal: tuple[JournalEntry, ...] | list[JournalEntry] = start.journal
        self.replay_len = len(start.journal)
        #: A journal pulled from Restate (replay only): an awakeable's place there is a
        #: guess (the latest it can be) and combinators left no entry; see _float_awakeable.
        #: ``stored`` is each position's index in the stored journal (None: made here).
        self.pulled = pulled
        self.stored: list[int | None] | None = None
        if pulled:
            self.journal = list(start.journal)
            self.stored = [e.index for e in start.journal]
        self.next_index = 1  # entry 0 is the input
        self.state: dict[str, str] = dict(start.state or {})
        seed = int.from_bytes(hashlib.sha256(start.invocation_id.encode()).digest()[:8], "big")
        self.rng = _random.Random(seed)
        self._loop = asyncio.get_event_loop()
        self._remote: dict[int, EntryFuture] = {}  # runtime-completed entries
        self._acks: dict[int, tuple[EntryFuture, JournalEntry]] = {}  # run results sent
        self._early: dict[int, Completion] = {}
        self._outbox: dict[int, NewEntry | None] = {}
        self._next_emit = self.replay_len
        # when each completed entry was completed, as a sort key: entries completed
        # before this attempt by the runtime's completion order, then live ones as seen
        self._rank = {i: n for n, i in enumerate(start.completion_order)}
        self._done_at: dict[int, tuple[int, int, int]] = {}
        self._live_seq = itertools.count()
        self._suspension = Suspension(self, self._loop, suspend_after)
        self.busy = self._suspension.body  # (bound once: two calls fewer per ctx.run step)
        self._steps = StepRunner(self, self._loop)
        self._run_error: Exception | None = None
        self._nondeterminism: NonDeterminismError | None = None
        self._closed = False
        self._attempt_event: asyncio.Event | None = None
        self._task: asyncio.Task[Any] | None = None
        self.ctx = ContextImpl(self)

    @property
    def divergence(self) -> NonDeterminismError | None:
        """The non-determinism found while replaying, if any."""
        return self._nondeterminism

    @property
    def replaying(self) -> bool:
        """True while the handler is still inside the recorded journal."""
        return self.next_index < self.replay_len

    @property
    def closed(self) -> bool:
        """The attempt ended (finished, suspended, aborted): nothing more is emitted."""
        return self._closed

    @property
    def bodies_running(self) -> int:
        """How many ``ctx.run`` bodies are running or wait for their entry's Ack."""
        return self._suspension.busy

    # -- messages in
    def deliver(self, msg: Ack | Completion | Abort) -> None:
        """A message from the runtime for this attempt."""
        if self._closed:
            return
        if isinstance(msg, Ack):
            acked = self._acks.pop(msg.index, None)
            if acked is not None:
                fut, entry = acked
                self._mark_done(msg.index, live=True)
                if not fut.done():
                    self._complete(fut, entry.result, entry.failure)
                self.busy(-1)
        elif isinstance(msg, Completion):
            waiting = self._remote.get(msg.index)
            if waiting is None:
                if msg.index not in self._early:
                    self._mark_done(msg.index, live=True)
                self._early[msg.index] = msg
            elif not waiting.done():
                self._mark_done(msg.index, live=True)
                self._complete(waiting, msg.result, msg.failure)
        elif isinstance(msg, Abort):
            self._close()
            if self._task is not None:
                self._task.cancel()

    def _mark_done(self, index: int, live: bool) -> None:
        if index in self._done_at:
            return
        if live:
            self._done_at[index] = (1, next(self._live_seq), index)
        else:
            at = self.stored[index] if self.stored is not None else index  # pulled: moved
            at = index if at is None else at
            self._done_at[index] = (0, self._rank.get(at, len(self._rank)), index)

    @staticmethod
    def _complete(fut: EntryFuture, result: str | None, failure: Failure | None) -> None:
        if failure is not None:
            fut.set_exception(failure_to_exception(failure))
        else:
            fut.set_result(result)

    # -- messages out
    def _emit(self, msg: Any) -> None:
        if not self._closed:
            self._emit_raw(msg)

    def _reserve(self, index: int) -> None:
        self._outbox[index] = None

    def _publish(self, entry: JournalEntry, needs_ack: bool = False) -> None:
        self._outbox[entry.index] = NewEntry(
            self.start.invocation_id, self.start.epoch, entry, needs_ack
        )
        while self._outbox.get(self._next_emit) is not None:
            self._emit(self._outbox.pop(self._next_emit))
            self._next_emit += 1

    # -- the journal cursor
    def _next_entry(self, kind: EntryKind, name: str | None) -> tuple[int, JournalEntry | None]:
        """The next journal index, and its recorded entry while replaying (checked to be
        the same kind and name, else a non-determinism error)."""
        if self._nondeterminism is not None:
            raise self._nondeterminism
        if self._closed:
            raise SuspendedError()
        if name is not None and not name.isascii():
            _check_name(name, kind)
        index = self.next_index
        if index >= self.replay_len and self.replay_only:
            self.replay_end = index
            self._close()
            raise SuspendedError()
        self.next_index += 1
        if index < self.replay_len:
            rec = self.journal[index]
            if rec.kind != kind or rec.name != name:
                err = NonDeterminismError(
                    index, _describe(rec.kind, rec.name), _describe(kind, name), _user_location()
                )
                self._nondeterminism = err
                raise err
            return index, rec
        return index, None

    def local_entry(
        self,
        kind: EntryKind,
        name: str | None,
        payload: Payload | None = None,
        result: Callable[[], str | None] | None = None,
    ) -> str | None:
        """An entry completed by the executor itself (state ops, signals): its result,
        recorded or (when new) made by ``result``."""
        index, rec = self._next_entry(kind, name)
        if rec is not None:
            return rec.result
        value = result() if result is not None else None
        text = payload.to_json() if payload is not None else None
        self._publish(JournalEntry(index, kind, name, text, value, None, True))
        return value

    def remote_entry(
        self,
        kind: EntryKind,
        name: str | None,
        payload: Payload | None,
        convert: Callable[[str | None], Any],
    ) -> JournalFuture:
        """An entry the runtime completes (timer, awakeable, promise, call...)."""
        index, rec = self._next_entry(kind, name)
        fut = self._remote_future(index, rec)
        if rec is None:
            text = payload.to_json() if payload is not None else None
            self._publish(JournalEntry(index, kind, name, text))
        return JournalFuture(self, fut, index, remote=True, convert=convert)

    def _remote_future(self, index: int, rec: JournalEntry | None) -> EntryFuture:
        fut: EntryFuture = self._loop.create_future()
        if rec is not None and rec.completed:
            self._mark_done(index, live=False)
            self._complete(fut, rec.result, rec.failure)
        elif index in self._early:
            c = self._early.pop(index)
            self._complete(fut, c.result, c.failure)
        else:
            self._remote[index] = fut
        # A failure nobody awaits must not be reported as "exception never retrieved".
        fut.add_done_callback(_retrieve)
        return fut

    # -- ctx.run steps (the bodies run in durable.steps)
    def run_step(
        self,
        name: str,
        action: Callable[..., Any],
        opts: RunOptions[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> JournalFuture:
        """``ctx.run``: the recorded outcome on replay, else the body runs."""
        s = (
            _serde.check_serde(opts.serde, f"ctx.run({name!r}) serde")
            if opts.serde is not None
            else None
        ) or _serde.JsonSerde(
            opts.type_hint if opts.type_hint is not None else _serde.return_type(action)
        )
        index, rec = self._next_entry(EntryKind.RUN, name)
        fut: EntryFuture = self._loop.create_future()
        fut.add_done_callback(_retrieve)
        if rec is not None:
            self._mark_done(index, live=False)
            self._complete(fut, rec.result, rec.failure)
        else:
            self._reserve(index)
            self._steps.start(index, name, action, opts, s, args, kwargs, fut)
        convert = s.deserialize if isinstance(s, _serde.JsonSerde) else _serde.decoder(s)
        return JournalFuture(self, fut, index, remote=False, convert=convert)

    def record_step(self, index: int, fut: EntryFuture, entry: JournalEntry) -> None:
        """A body's outcome: emit its entry; the Ack completes ``fut`` (in deliver), so
        the handler goes on in the same loop turn."""
        self._acks[index] = (fut, entry)
        self._publish(entry, needs_ack=True)

    def step_failed(self, fut: EntryFuture, e: BaseException) -> None:
        """A body failed (retryable) or was aborted: the attempt fails now, even if the
        handler caught the error, since the failed step is a hole in the journal (no later
        entry can be emitted)."""
        if not fut.done():
            fut.set_exception(e if isinstance(e, Exception) else SuspendedError())
        if isinstance(e, Exception):
            self._run_error = e
            if self._task is not None and not self._task.done() and not self._closed:
                self._task.cancel()

    # -- timers, calls, sends, awakeables
    def sleep(self, delta: timedelta, name: str | None = None) -> JournalFuture:
        """``ctx.sleep``: a durable timer the runtime fires."""
        ms = max(int(delta.total_seconds() * 1000), 0)
        timer = self.remote_entry(EntryKind.SLEEP, name, SleepPayload(ms), _none)
        fut = JournalSleepFuture(self, timer.inner, timer.index, remote=True, convert=_none)
        self._timer_started(fut, ms)
        return fut

    def call(
        self, payload: CallPayload, workflow_main: bool, convert: Callable[[str | None], Any]
    ) -> JournalCallFuture:
        """A call; ``payload`` without its ``invocation_id``, which is chosen here (or
        read back from the recorded entry)."""
        name = f"{payload.service}/{payload.handler}"
        index, rec = self._next_entry(EntryKind.CALL, name)
        if rec is not None:
            target = CallPayload.from_json(rec.payload).invocation_id
        else:
            target = self._target_id(payload, workflow_main)
        fut = self._remote_future(index, rec)
        if rec is None:
            text = dataclasses.replace(payload, invocation_id=target).to_json()
            self._publish(JournalEntry(index, EntryKind.CALL, name, text))
        return JournalCallFuture(self, fut, index, target, convert)

    def send(self, payload: SendPayload, workflow_main: bool) -> str:
        """A one-way send (``payload`` as for :meth:`call`); the callee's invocation id."""
        name = f"{payload.service}/{payload.handler}"
        index, rec = self._next_entry(EntryKind.ONE_WAY_CALL, name)
        if rec is not None:
            return SendPayload.from_json(rec.payload).invocation_id
        target = self._target_id(payload, workflow_main)
        text = dataclasses.replace(payload, invocation_id=target).to_json()
        self._publish(
            JournalEntry(index, EntryKind.ONE_WAY_CALL, name, text, json.dumps(target), None, True)
        )
        return target

    @staticmethod
    def _target_id(p: CallPayload, workflow_main: bool) -> str:
        """A new invocation id, or the one an idempotency key (or a workflow id) names:
        the runtime derives the same, so a repeated call reaches the same invocation."""
        if workflow_main:
            scope = idempotency_scope(p.service, p.handler, p.key, True)
            return idempotent_invocation_id(scope, "run")
        if p.idempotency_key:
            scope = idempotency_scope(p.service, p.handler, p.key, False)
            return idempotent_invocation_id(scope, p.idempotency_key)
        return new_invocation_id()

    def awakeable(
        self, convert: Callable[[str | None], Any], schema: dict[str, Any] | None = None
    ) -> tuple[str, JournalFuture]:
        """``ctx.awakeable``: its id (new, or the recorded one) and its future; ``schema``
        is the expected value's, for the dashboard's resolve form."""
        if self.pulled:
            self._float_awakeable()
        index, rec = self._next_entry(EntryKind.AWAKEABLE, None)
        if rec is not None:
            awk_id = AwakeablePayload.from_json(rec.payload).id
        else:
            awk_id = "awk_" + secrets.token_urlsafe(18)
        fut = self._remote_future(index, rec)
        if rec is None:
            text = AwakeablePayload(awk_id, schema).to_json()
            self._publish(JournalEntry(index, EntryKind.AWAKEABLE, None, text))
        return awk_id, JournalFuture(self, fut, index, remote=True, convert=convert)

    # -- combinators
    def _order_key(self, f: JournalFuture) -> tuple[int, int, int]:
        return self._done_at.get(f.index if f.index is not None else -1, (2, 0, 0))

    async def _block_on(self, futures: list[JournalFuture], mode: str) -> None:
        """Wait for the futures (``asyncio.FIRST_COMPLETED`` or ``ALL_COMPLETED``) with no
        task per future, counting the remote ones as awaited (so the handler may suspend)."""
        pending = [f for f in futures if not f.done()]
        if not pending:
            return
        remote = [f.index for f in pending if f.remote and f.index is not None]
        self._suspension.begin(remote)
        try:
            await asyncio.wait([f.inner for f in pending], return_when=mode)
        finally:
            self._suspension.end(remote)
        if self._closed:
            raise SuspendedError()

    async def wait_completed(
        self, futures: list[JournalFuture], name: str
    ) -> tuple[list[JournalFuture], list[JournalFuture]]:
        """Wait until at least one future is done; ``(done, pending)``, done in completion
        order. The outcome is journaled (a ``combinator`` entry listing the done futures),
        so a replay returns the same ``done`` even when more futures have completed by
        then, or completed in another order."""
        if self.pulled:
            await self._make_combinator(name, futures)
        index, rec = self._next_entry(EntryKind.COMBINATOR, name)
        indexes = [f.index for f in futures]
        if rec is not None:
            futs = CombinatorPayload.from_json(rec.payload).futures
            recorded = None if futs is None else list(futs)
            by_index = {f.index: f for f in futures}
            order = json.loads(rec.result or "[]")
            if recorded != indexes or any(i not in by_index for i in order):
                err = NonDeterminismError(
                    index,
                    f"{_describe(rec.kind, name)} over entries {recorded}",
                    f"{_describe(rec.kind, name)} over entries {indexes}",
                    _user_location(),
                )
                self._nondeterminism = err
                raise err
            done = [by_index[i] for i in order]
            await self._block_on(done, asyncio.ALL_COMPLETED)  # already done, normally
        else:
            self._reserve(index)
            if not any(f.done() for f in futures):
                await self._block_on(futures, asyncio.FIRST_COMPLETED)
            done = sorted((f for f in futures if f.done()), key=self._order_key)
            self._publish(
                JournalEntry(
                    index,
                    EntryKind.COMBINATOR,
                    name,
                    CombinatorPayload(tuple(indexes)).to_json(),  # type: ignore[arg-type]
                    json.dumps([f.index for f in done]),
                    None,
                    True,
                )
            )
        done_ids = {id(f) for f in done}
        return done, [f for f in futures if id(f) not in done_ids]

    # -- a journal pulled from Restate, which journals no awakeable and no combinator
    def _float_awakeable(self) -> None:
        """Restate journals no awakeable: the pull placed each just before the first
        command carrying its id (the latest it can be; ``"guessed": true`` in its payload).
        When the code makes one where the journal holds another kind, the first guessed
        awakeable after the cursor, with no awakeable between, moves to the cursor."""
        i, journal, stored = self.next_index, self.journal, self.stored
        assert isinstance(journal, list) and stored is not None
        if i >= self.replay_len or journal[i].kind is EntryKind.AWAKEABLE:
            return
        for j in range(i + 1, self.replay_len):
            if journal[j].kind is EntryKind.AWAKEABLE:
                if '"guessed": true' in (journal[j].payload or ""):
                    journal.insert(i, journal.pop(j))
                    stored.insert(i, stored.pop(j))
                return

    async def _make_combinator(self, name: str, futures: list[JournalFuture]) -> None:
        """Restate journals no combinator: one is made at the cursor from what the journal
        completed (in ``start.completion_order``, the order Restate notified them); if
        nothing completed, the replay waits here."""
        i, journal, stored = self.next_index, self.journal, self.stored
        assert isinstance(journal, list) and stored is not None
        if i >= self.replay_len or journal[i].kind is EntryKind.COMBINATOR:
            return
        if not any(f.done() for f in futures):
            await self._block_on(futures, asyncio.FIRST_COMPLETED)  # replay: suspends
        done = sorted((f for f in futures if f.done()), key=self._order_key)
        payload = CombinatorPayload(tuple(f.index for f in futures))  # type: ignore[misc]
        order = json.dumps([f.index for f in done])
        journal.insert(
            i, JournalEntry(i, EntryKind.COMBINATOR, name, payload.to_json(), order, None, True)
        )
        stored.insert(i, None)
        self.replay_len += 1

    async def gather(self, futures: list[JournalFuture]) -> None:
        """Wait until every future is done. Nothing to journal: the outcome does not
        depend on the order in which they complete."""
        await self._block_on(futures, asyncio.ALL_COMPLETED)

    def cancel_target(self, invocation_id: str) -> None:
        """``cancel_invocation()`` of a call future: a cancel entry for its callee."""
        self.ctx.cancel_invocation(invocation_id)

    # -- suspension (the policy is durable.suspension's)
    def begin_await(self, index: int | None) -> None:
        """The handler awaits entry ``index`` (which the runtime completes)."""
        if index is not None:
            self._suspension.begin((index,))

    def end_await(self, index: int | None) -> None:
        """The await of entry ``index`` ended (completed, or the awaiting task stopped)."""
        if index is not None:
            self._suspension.end((index,))

    def pending_remote(self, index: int) -> bool:
        fut = self._remote.get(index)
        return fut is not None and not fut.done()

    def emitted(self, index: int) -> bool:
        return index < self._next_emit

    def suspend(self, waiting: tuple[int, ...]) -> None:
        """Tell the runtime this attempt waits on ``waiting``, and stop it."""
        self._emit(Suspend(self.start.invocation_id, self.start.epoch, waiting))
        self._close()
        for fut in self._remote.values():
            if not fut.done():
                fut.set_exception(SuspendedError())

    def _timer_started(self, fut: JournalFuture, ms: int) -> None:
        """Note when a sleep is due (on this loop's clock), for the suspension policy."""
        if fut.done() or fut.index is None or self.suspend_after <= 0:
            return
        i = fut.index
        rec = self.journal[i] if i < self.replay_len else None
        wake_ms = SleepPayload.from_json(rec.payload).wake_at if rec is not None else None
        if wake_ms is not None:  # recorded by the runtime: the timer's own due time
            self._suspension.timer_due(i, self._loop.time() + wake_ms / 1000.0 - _time.time())
        else:
            self._suspension.timer_due(i, self._loop.time() + ms / 1000.0)

    def _close(self) -> None:
        self._closed = True
        self._suspension.cancel()
        if self._attempt_event is not None:
            self._attempt_event.set()

    def attempt_event(self) -> asyncio.Event:
        """Set when this attempt ends (restate's ``attempt_finished_event``)."""
        if self._attempt_event is None:
            self._attempt_event = asyncio.Event()
            if self._closed:
                self._attempt_event.set()
        return self._attempt_event

    def _check_journal_consumed(self) -> None:
        """The handler ended: a recorded entry it did not reach (other than the output) is a
        divergence, like a different step."""
        i = self.next_index
        if i < self.replay_len and self.journal[i].kind is not EntryKind.OUTPUT:
            rec = self.journal[i]
            code = getattr(self.hdef.fn, "__code__", None)
            where = f"{code.co_filename}:{code.co_firstlineno}" if code else None
            err = NonDeterminismError(
                i, _describe(rec.kind, rec.name), "the end of the handler", where
            )
            self._nondeterminism = err
            raise err

    # -- the attempt
    async def _call_handler(self, *arg: Any) -> Any:
        """The handler, inside restate's ``invocation_context_managers`` if any."""
        hdef = self.hdef
        managers = hdef.service.context_managers + hdef.context_managers
        if not managers:
            return await hdef.fn(self.ctx, *arg)
        async with contextlib.AsyncExitStack() as stack:
            for make in managers:
                await stack.enter_async_context(make())
            return await hdef.fn(self.ctx, *arg)

    async def run(self) -> None:
        """Run the handler to its end, suspension, failure or abort."""
        self._task = asyncio.current_task()
        _logging.current_executor.set(self)
        s = self.start
        try:
            if self.hdef.arity == 2:
                try:
                    raw = self.journal[0].payload
                    if self.hdef.input_serde is not None:
                        arg = _serde.decode_with(self.hdef.input_serde, raw)
                    else:
                        arg = _serde.deserialize(raw, self.hdef.input_type, strict=True)
                except (TypeError, ValueError) as e:
                    raise TerminalError(
                        f"invalid input for {self.hdef.service_name}/{self.hdef.name}: {e}", 400
                    ) from e
                result = await self._call_handler(arg)
            else:
                result = await self._call_handler()
            if self._nondeterminism is not None:
                raise self._nondeterminism
            self._check_journal_consumed()
            await self._steps.land()  # run bodies started but never awaited
            if self._run_error is not None:
                raise self._run_error
            try:
                if self.hdef.output_serde is not None:
                    out = _serde.encode_with(self.hdef.output_serde, result)
                else:
                    out = _serde.serialize(result)
            except TypeError as e:
                raise TerminalError(f"cannot serialize the result: {e}", 500) from e
            self._emit(Output(s.invocation_id, s.epoch, result=out))
        except SuspendedError:
            pass
        except asyncio.CancelledError:
            if self._closed:
                pass
            elif self._run_error is not None:  # cancelled by a failed ctx.run body
                self._failed(self._run_error)
            else:
                raise
        except NonDeterminismError as e:
            self._diverged(e)
        except TerminalError as e:
            if self._nondeterminism is not None:
                self._diverged(self._nondeterminism)
            else:
                try:
                    self._check_journal_consumed()
                except NonDeterminismError as e2:
                    self._diverged(e2)
                else:
                    failure = Failure(e.status_code, e.message)
                    stack, where = _traces.traceback_text(e), _traces.user_location(e)
                    self._emit(Output(s.invocation_id, s.epoch, None, failure, stack, where))
        except Exception as e:
            if self._nondeterminism is not None:
                self._diverged(self._nondeterminism)
            else:
                self._failed(e)
        finally:
            self._close()
            self._steps.cancel()

    def _failed(self, e: BaseException) -> None:
        """The attempt failed with ``e``: the runtime retries it."""
        s = self.start
        after = e.retry_after if isinstance(e, RetryableError) else None
        self._emit(
            AttemptFailed(
                s.invocation_id,
                s.epoch,
                f"{type(e).__name__}: {e}",
                _traces.traceback_text(e),
                location=_traces.user_location(e),
                retry_after_s=after.total_seconds() if after is not None else None,
            )
        )

    def _diverged(self, e: NonDeterminismError) -> None:
        s = self.start
        self._emit(AttemptFailed(s.invocation_id, s.epoch, str(e), "", nondeterminism=True))


def _retrieve(f: asyncio.Future[Any]) -> None:
    """Mark a failure as retrieved: one nobody awaits is not an error to report."""
    if not f.cancelled():
        f.exception()


def _none(_raw: str | None) -> None:
    return None


def _check_name(name: str, kind: EntryKind) -> None:
    """A name the store cannot hold (a lone surrogate) fails the attempt for good at
    the call that gives it, before any entry is written."""
    try:
        _serde.check_text(name, f"the name given to this {kind.value} call ({name!r})")
    except _serde.UnstorableValue as e:
        raise _serde.UnstorableValue(e.message, 500) from None
