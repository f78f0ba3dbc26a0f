"""The replay engine: runs one invocation attempt of a handler against its journal.

It does no I/O of its own. Messages come in through :meth:`Executor.deliver`
(:class:`~durable.messages.Ack`, :class:`~durable.messages.Completion`,
:class:`~durable.messages.Abort`) and go out through the ``emit`` callback given at
construction (:class:`~durable.messages.NewEntry`, :class:`~durable.messages.Suspend`,
:class:`~durable.messages.Output`, :class:`~durable.messages.AttemptFailed`). The worker
process connects ``emit`` to a socket; the in-process runtime to a queue.

Replay: the handler runs from the top; each ctx call takes the next journal index. While
the index is inside the recorded journal, the call is checked against the recorded entry
(kind and name) and answered from it; past the end, a new entry is appended and emitted.
Entries are emitted in index order, even when ``ctx.run`` bodies finish out of order.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import itertools
import json
import os
import random as _random
import secrets
import sys
import time as _time
import traceback
import uuid as _uuid
from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any

from . import logging as _logging
from . import serde as _serde
from .bodythreads import call_in_thread, run_in_thread
from .context import (
    CallFuture,
    DurableFuture,
    DurablePromise,
    Request,
    RunOptions,
    SendHandle,
    WorkflowContext,
)
from .definitions import HandlerDef, handler_of
from .exceptions import (
    CancelledError,
    DurableTimeoutError,
    InvalidUsageError,
    NonDeterminismError,
    SuspendedError,
    TerminalError,
)
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
    frame = sys._getframe(1)
    while (
        frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _SDK_DIR
    ):
        frame = frame.f_back
    if frame is None:
        return None
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


class _Future(DurableFuture[Any]):
    """A durable result backed by an asyncio future and, maybe, a journal index."""

    def __init__(
        self,
        executor: Executor,
        fut: asyncio.Future,
        index: int | None,
        remote: bool,
        convert: Callable[[str | None], Any] | None = None,
    ) -> None:
        self._ex = executor
        self._fut = fut
        self._index = index
        self._remote = remote  # completed by the runtime (may suspend while awaited)
        self._convert = convert

    def done(self) -> bool:
        return self._fut.done()

    def _value(self) -> Any:
        raw = self._fut.result()
        return self._convert(raw) if self._convert else raw

    def __await__(self) -> Generator[Any, None, Any]:
        if not self._fut.done():
            if self._remote:
                self._ex._begin_await(self._index)
            try:
                yield from self._fut.__await__()
            finally:
                if self._remote:
                    self._ex._end_await(self._index)
        return self._value()


class _CallFuture(_Future, CallFuture[Any]):
    def __init__(
        self,
        executor: Executor,
        fut: asyncio.Future,
        index: int,
        target_id: str,
        convert: Callable[[str | None], Any],
    ) -> None:
        super().__init__(executor, fut, index, remote=True, convert=convert)
        self._target_id = target_id

    async def invocation_id(self) -> str:
        return self._target_id


class _SendHandle(SendHandle):
    def __init__(self, ctx: _ContextImpl, target_id: str) -> None:
        self._ctx = ctx
        self._target_id = target_id

    async def invocation_id(self) -> str:
        return self._target_id

    def cancel_invocation(self) -> None:
        self._ctx.cancel_invocation(self._target_id)


class _Promise(DurablePromise[Any]):
    def __init__(
        self, ctx: _ContextImpl, name: str, serde: _serde.Serde | None, type_hint: Any
    ) -> None:
        self._ctx = ctx
        self._name = name
        self._serde = serde or _serde.JsonSerde(type_hint)
        self._schema = _expected_schema(type_hint)

    def value(self) -> DurableFuture[Any]:
        # the expected type's JSON schema rides along so a person resolving the promise
        # from the dashboard gets an editor prefilled for it (replay matches kind and name)
        payload = json.dumps({"schema": self._schema}) if self._schema else None
        return self._ctx._ex._remote_entry(
            EntryKind.GET_PROMISE, self._name, payload, self._serde.deserialize
        )

    def resolve(self, value: Any) -> DurableFuture[None]:
        payload = json.dumps({"result": self._serde.serialize(value)})
        return self._ctx._ex._remote_entry(
            EntryKind.COMPLETE_PROMISE, self._name, payload, lambda _r: None
        )

    def reject(self, message: str, code: int = 500) -> DurableFuture[None]:
        payload = json.dumps({"failure": {"code": code, "message": message}})
        return self._ctx._ex._remote_entry(
            EntryKind.COMPLETE_PROMISE, self._name, payload, lambda _r: None
        )

    def peek(self) -> DurableFuture[Any]:
        return self._ctx._ex._remote_entry(
            EntryKind.PEEK_PROMISE,
            self._name,
            None,
            lambda r: None if r is None else self._serde.deserialize(r),
        )


def _expected_schema(type_hint: Any) -> dict | None:
    """The JSON schema of an awaited value's type, or None (never fails the handler)."""
    if type_hint is None:
        return None
    try:
        return _serde.json_schema(type_hint) or None
    except Exception:  # noqa: BLE001 (best effort: a form hint, not a contract)
        return None


def _arg_json(arg: Any) -> str:
    if isinstance(arg, (bytes, bytearray)):
        return bytes(arg).decode() or "null"
    return _serde.serialize(arg)


class _ContextImpl(WorkflowContext):
    """The one implementation of every context class; kind checks guard writes."""

    def __init__(self, executor: Executor) -> None:
        self._ex = executor

    # -- request / determinism helpers
    def request(self) -> Request:
        s = self._ex.start
        body = (s.journal[0].payload or "").encode()
        return Request(id=s.invocation_id, headers=dict(s.headers), body=body, attempt=s.attempt)

    def key(self) -> str:
        if self._ex.start.key is None:
            raise InvalidUsageError("ctx.key() is only available in virtual objects and workflows")
        return self._ex.start.key

    def random(self) -> _random.Random:
        return self._ex.rng

    def uuid(self) -> _uuid.UUID:
        return _uuid.UUID(int=self._ex.rng.getrandbits(128), version=4)

    async def time(self) -> float:
        return await self._ex._remote_entry(
            EntryKind.TIME, None, None, lambda r: float(json.loads(r))
        )

    # -- journaled actions
    def run(
        self,
        name: str,
        action: Callable[..., Any],
        *args: Any,
        serde: _serde.Serde | None = None,
        max_attempts: int | None = None,
        max_retry_duration: timedelta | None = None,
        type_hint: Any = None,
        **kwargs: Any,
    ) -> DurableFuture[Any]:
        call_args = tuple(kwargs.pop("args", None) or ()) + args
        opts = RunOptions(
            max_attempts=max_attempts,
            max_retry_duration=max_retry_duration,
            serde=serde,
            type_hint=type_hint,
        )
        return self._ex._run(name, action, opts, call_args, kwargs)

    def run_typed(
        self,
        name: str,
        action: Callable[..., Any],
        options: RunOptions | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> DurableFuture[Any]:
        return self._ex._run(name, action, options or RunOptions(), args, kwargs)

    def sleep(self, delta: timedelta, name: str | None = None) -> DurableFuture[None]:
        ms = max(int(delta.total_seconds() * 1000), 0)
        fut = self._ex._remote_entry(
            EntryKind.SLEEP, name, json.dumps({"duration_ms": ms}), lambda _r: None
        )
        self._ex._timer_started(fut, ms)
        return fut

    # -- state
    def _check_state(self, write: bool, what: str) -> None:
        kind = self._ex.hdef.kind
        if kind == "service":
            raise InvalidUsageError(
                f"ctx.{what} needs a VirtualObject or Workflow; {self._ex.hdef.service_name} is a Service"
            )
        if write and kind == "shared":
            raise TerminalError(
                f"ctx.{what} is not allowed in shared handler {self._ex.hdef.service_name}/"
                f"{self._ex.hdef.name}: shared handlers only read state. Make the handler "
                "exclusive (the default kind) to change state.",
                500,
            )

    async def get(self, name: str, serde: _serde.Serde | None = None, type_hint: Any = None) -> Any:
        self._check_state(False, "get")
        s = serde or _serde.JsonSerde(type_hint)
        raw = self._ex._local_entry(
            EntryKind.GET_STATE, name, lambda: (None, self._ex.state.get(name))
        )
        return None if raw is None else s.deserialize(raw)

    async def state_keys(self) -> list[str]:
        self._check_state(False, "state_keys")
        raw = self._ex._local_entry(
            EntryKind.STATE_KEYS, None, lambda: (None, json.dumps(sorted(self._ex.state)))
        )
        return json.loads(raw)

    def set(self, name: str, value: Any, serde: _serde.Serde | None = None) -> None:
        self._check_state(True, "set")
        text = (serde or _serde.JsonSerde()).serialize(value)
        self._ex._local_entry(EntryKind.SET_STATE, name, lambda: (text, None))
        self._ex.state[name] = text

    def clear(self, name: str) -> None:
        self._check_state(True, "clear")
        self._ex._local_entry(EntryKind.CLEAR_STATE, name, lambda: (None, None))
        self._ex.state.pop(name, None)

    def clear_all(self) -> None:
        self._check_state(True, "clear_all")
        self._ex._local_entry(EntryKind.CLEAR_ALL_STATE, None, lambda: (None, None))
        self._ex.state.clear()

    def promise(
        self, name: str, serde: _serde.Serde | None = None, type_hint: Any = None
    ) -> DurablePromise[Any]:
        if self._ex.hdef.service.kind != "workflow":
            raise InvalidUsageError("ctx.promise() is only available in workflows")
        return _Promise(self, name, serde, type_hint)

    # -- calls
    def _call(
        self,
        service: str,
        handler: str,
        key: str | None,
        arg: Any,
        idem: str | None,
        headers: dict[str, str] | None,
        convert: Callable[[str | None], Any],
        workflow_main: bool = False,
    ) -> CallFuture[Any]:
        return self._ex._call(
            service, handler, key, _arg_json(arg), idem, headers, convert, workflow_main
        )

    def _send(
        self,
        service: str,
        handler: str,
        key: str | None,
        arg: Any,
        delay: timedelta | None,
        idem: str | None,
        headers: dict[str, str] | None,
        workflow_main: bool = False,
    ) -> SendHandle:
        target = self._ex._send(
            service, handler, key, _arg_json(arg), delay, idem, headers, workflow_main
        )
        return _SendHandle(self, target)

    @staticmethod
    def _out(tpe: Any) -> Callable[[str | None], Any]:
        hdef = handler_of(tpe)
        return lambda r: _serde.deserialize(r, hdef.output_type)

    def service_call(
        self,
        tpe: Any,
        arg: Any = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> CallFuture[Any]:
        h = handler_of(tpe)
        return self._call(
            h.service_name, h.name, None, arg, idempotency_key, headers, self._out(tpe)
        )

    def object_call(
        self,
        tpe: Any,
        key: str,
        arg: Any = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> CallFuture[Any]:
        h = handler_of(tpe)
        return self._call(
            h.service_name,
            h.name,
            key,
            arg,
            idempotency_key,
            headers,
            self._out(tpe),
            h.kind == "workflow",
        )

    workflow_call = object_call

    def service_send(
        self,
        tpe: Any,
        arg: Any = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        h = handler_of(tpe)
        return self._send(h.service_name, h.name, None, arg, send_delay, idempotency_key, headers)

    def object_send(
        self,
        tpe: Any,
        key: str,
        arg: Any = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        h = handler_of(tpe)
        return self._send(
            h.service_name,
            h.name,
            key,
            arg,
            send_delay,
            idempotency_key,
            headers,
            h.kind == "workflow",
        )

    workflow_send = object_send

    def generic_call(
        self,
        service: str,
        handler: str,
        arg: Any = None,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> CallFuture[Any]:
        return self._call(service, handler, key, arg, idempotency_key, headers, _serde.deserialize)

    def generic_send(
        self,
        service: str,
        handler: str,
        arg: Any = None,
        key: str | None = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        return self._send(service, handler, key, arg, send_delay, idempotency_key, headers)

    # -- awakeables, cancellation, attach
    def awakeable(
        self, serde: _serde.Serde | None = None, type_hint: Any = None
    ) -> tuple[str, DurableFuture[Any]]:
        s = serde or _serde.JsonSerde(type_hint)
        return self._ex._awakeable(s.deserialize, _expected_schema(type_hint))

    def resolve_awakeable(self, name: str, value: Any, serde: _serde.Serde | None = None) -> None:
        text = (serde or _serde.JsonSerde()).serialize(value)
        payload = json.dumps({"id": name, "result": text})
        self._ex._local_entry(EntryKind.COMPLETE_AWAKEABLE, name, lambda: (payload, None))

    def reject_awakeable(self, name: str, failure_message: str, failure_code: int = 500) -> None:
        payload = json.dumps(
            {"id": name, "failure": {"code": failure_code, "message": failure_message}}
        )
        self._ex._local_entry(EntryKind.COMPLETE_AWAKEABLE, name, lambda: (payload, None))

    def cancel_invocation(self, invocation_id: str) -> None:
        payload = json.dumps({"invocation_id": invocation_id})
        self._ex._local_entry(EntryKind.CANCEL_INVOCATION, invocation_id, lambda: (payload, None))

    def attach_invocation(
        self, invocation_id: str, serde: _serde.Serde | None = None, type_hint: Any = None
    ) -> DurableFuture[Any]:
        s = serde or _serde.JsonSerde(type_hint)
        payload = json.dumps({"invocation_id": invocation_id})
        return self._ex._remote_entry(
            EntryKind.ATTACH_INVOCATION, invocation_id, payload, s.deserialize
        )


def _run_entry(
    index: int, name: str, result: str | None = None, failure: Failure | None = None
) -> JournalEntry:
    """The completed journal entry of a ``ctx.run`` step."""
    return JournalEntry(index, EntryKind.RUN, name, None, result, failure, True)


class Executor:
    """Runs one attempt of one invocation; see the module docstring."""

    def __init__(
        self,
        hdef: HandlerDef,
        start: Start,
        emit: Callable[[Any], None],
        suspend_after: float = 0.0,
        replay_only: bool = False,
    ) -> None:
        self.hdef = hdef
        #: Check the code against the recorded journal only: stop (SuspendedError) at the
        #: first call past its end, so no ``ctx.run`` body runs and nothing is emitted.
        self.replay_only = replay_only
        self.replay_end: int | None = None
        self.start = start
        self._emit_raw = emit
        self.suspend_after = suspend_after
        self.journal = start.journal
        self.replay_len = len(start.journal)
        self.next_index = 1  # entry 0 is the input
        self.state: dict[str, str] = dict(start.state or {})
        seed = int.from_bytes(hashlib.sha256(start.invocation_id.encode()).digest()[:8], "big")
        self.rng = _random.Random(seed)
        self._loop = asyncio.get_event_loop()
        self._remote: dict[int, asyncio.Future] = {}  # runtime-completed entries
        self._acks: dict[int, tuple[asyncio.Future, JournalEntry]] = {}  # run results sent
        self._early: dict[int, Completion] = {}
        self._outbox: dict[int, NewEntry | None] = {}
        self._next_emit = self.replay_len
        self._awaiting: dict[int, int] = {}
        # when each completed entry was completed, as a sort key: entries completed
        # before this attempt by the runtime's completion order, then live ones as seen
        self._rank = {i: n for n, i in enumerate(start.completion_order)}
        self._done_at: dict[int, tuple[int, int, int]] = {}
        self._sleep_due: dict[int, float] = {}  # entry -> loop time its timer is due
        self._live_seq = itertools.count()
        self._local_busy = 0
        self._suspend_handle: asyncio.TimerHandle | None = None
        self._run_tasks: set[asyncio.Task] = set()
        self._nondeterminism: NonDeterminismError | None = None
        self._closed = False
        self._task: asyncio.Task | None = None
        self.ctx = _ContextImpl(self)

    @property
    def divergence(self) -> NonDeterminismError | None:
        """The non-determinism found while replaying, if any."""
        return self._nondeterminism

    @property
    def replaying(self) -> bool:
        """True while the handler is still inside the recorded journal."""
        return self.next_index < self.replay_len

    # -- messages in
    def deliver(self, msg: Ack | Completion | Abort) -> None:
        if self._closed:
            return
        if isinstance(msg, Ack):
            acked = self._acks.pop(msg.index, None)
            if acked is not None:
                fut, entry = acked
                self._mark_done(msg.index, live=True)
                if not fut.done():
                    self._complete(fut, entry.result, entry.failure)
                self._busy(-1)
        elif isinstance(msg, Completion):
            fut = self._remote.get(msg.index)
            if fut is None:
                if msg.index not in self._early:
                    self._mark_done(msg.index, live=True)
                self._early[msg.index] = msg
            elif not fut.done():
                self._mark_done(msg.index, live=True)
                self._complete(fut, msg.result, msg.failure)
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
            self._done_at[index] = (0, self._rank.get(index, len(self._rank)), index)

    @staticmethod
    def _complete(fut: asyncio.Future, result: str | None, failure: Failure | None) -> None:
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

    # -- journal
    def _next_entry(self, kind: EntryKind, name: str | None) -> tuple[int, JournalEntry | None]:
        if self._nondeterminism is not None:
            raise self._nondeterminism
        if self._closed:
            raise SuspendedError()
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
        if index == self.replay_len and self.replay_len > 1:
            pass  # replay finished: from here on entries are new
        return index, None

    def _local_entry(
        self, kind: EntryKind, name: str | None, make: Callable[[], tuple[str | None, str | None]]
    ) -> str | None:
        """An entry completed by the executor itself (state ops, signals)."""
        index, rec = self._next_entry(kind, name)
        if rec is not None:
            return rec.result
        payload, result = make()
        self._publish(JournalEntry(index, kind, name, payload, result, None, True))
        return result

    def _remote_entry(
        self,
        kind: EntryKind,
        name: str | None,
        payload: str | None,
        convert: Callable[[str | None], Any],
    ) -> _Future:
        """An entry the runtime completes (timer, awakeable, promise, call...)."""
        index, rec = self._next_entry(kind, name)
        fut = self._remote_future(index, rec)
        if rec is None:
            self._publish(JournalEntry(index, kind, name, payload))
        return _Future(self, fut, index, remote=True, convert=convert)

    def _remote_future(self, index: int, rec: JournalEntry | None) -> asyncio.Future:
        fut = self._loop.create_future()
        if rec is not None and rec.completed:
            self._mark_done(index, live=False)
            self._complete(fut, rec.result, rec.failure)
        elif index in self._early:
            c = self._early.pop(index)
            self._complete(fut, c.result, c.failure)
        else:
            self._remote[index] = fut
        # A failure nobody awaits must not be reported as "exception never retrieved".
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        return fut

    # -- run
    def _run(
        self, name: str, action: Callable[..., Any], opts: RunOptions, args: tuple, kwargs: dict
    ) -> _Future:
        s = opts.serde or _serde.JsonSerde(opts.type_hint)
        index, rec = self._next_entry(EntryKind.RUN, name)
        fut = self._loop.create_future()
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        if rec is not None:
            self._mark_done(index, live=False)
            self._complete(fut, rec.result, rec.failure)
            return _Future(self, fut, index, remote=False, convert=s.deserialize)
        self._reserve(index)
        if (
            opts.max_attempts is None
            and opts.max_retry_duration is None
            and not inspect.iscoroutinefunction(action)
        ):
            # A plain synchronous body: straight to a body thread, no task (two loop turns
            # fewer per step); anything unusual goes back to _run_body.
            self._busy(+1)
            landed = self._loop.create_future()
            self._run_tasks.add(landed)  # type: ignore[arg-type]  # awaited/cancelled alike
            call_in_thread(
                action,
                args,
                kwargs,
                lambda ok, value: self._body_done(index, name, s, fut, landed, ok, value),
            )
            return _Future(self, fut, index, remote=False, convert=s.deserialize)
        task = self._loop.create_task(
            self._run_body(index, name, action, opts, s, args, kwargs, fut)
        )
        self._run_tasks.add(task)
        task.add_done_callback(self._run_tasks.discard)
        return _Future(self, fut, index, remote=False, convert=s.deserialize)

    def _body_done(
        self,
        index: int,
        name: str,
        s: _serde.Serde,
        fut: asyncio.Future,
        landed: asyncio.Future,
        ok: bool,
        value: Any,
    ) -> None:
        """A synchronous body (started by _run without a task) returned or raised."""
        self._run_tasks.discard(landed)  # type: ignore[arg-type]
        if landed.done():  # the attempt ended meanwhile (abort): nothing to record
            return
        landed.set_result(None)
        if self._closed:
            return
        if ok and inspect.isawaitable(value):  # a sync function returning an awaitable
            self._busy(-1)

            async def finish() -> Any:
                return await value

            task = self._loop.create_task(
                self._run_body(index, name, finish, RunOptions(), s, (), {}, fut)
            )
            self._run_tasks.add(task)
            task.add_done_callback(self._run_tasks.discard)
            return
        try:
            if ok:
                entry = _run_entry(index, name, s.serialize(value))
            elif isinstance(value, TerminalError):
                entry = _run_entry(index, name, failure=Failure(value.status_code, value.message))
            else:
                raise value
        except BaseException as e:
            self._busy(-1)
            self._step_failed(fut, e)
            return
        self._step_recorded(index, fut, entry)

    def _step_recorded(self, index: int, fut: asyncio.Future, entry: JournalEntry) -> None:
        # the Ack completes ``fut`` (in deliver): the handler goes on in the same turn
        self._acks[index] = (fut, entry)
        self._publish(entry, needs_ack=True)

    def _step_failed(self, fut: asyncio.Future, e: BaseException) -> None:
        """A body failed (retryable) or was aborted: the attempt fails now, even if the
        handler caught the error, since the failed step is a hole in the journal (no later
        entry can be emitted)."""
        if not fut.done():
            fut.set_exception(e if isinstance(e, Exception) else SuspendedError())
        if isinstance(e, Exception):
            self._run_error = e
            if self._task is not None and not self._task.done() and not self._closed:
                self._task.cancel()

    async def _run_body(
        self,
        index: int,
        name: str,
        action: Callable[..., Any],
        opts: RunOptions,
        s: _serde.Serde,
        args: tuple,
        kwargs: dict,
        fut: asyncio.Future,
    ) -> None:
        self._busy(+1)
        awaiting_ack = False
        try:
            attempt = 0
            started = _time.monotonic()
            delay = (opts.initial_retry_interval or timedelta(milliseconds=50)).total_seconds()
            retry_in_place = opts.max_attempts is not None or opts.max_retry_duration is not None
            while True:
                attempt += 1
                try:
                    if inspect.iscoroutinefunction(action):
                        value = await action(*args, **kwargs)
                    else:
                        value = await run_in_thread(action, *args, **kwargs)
                        if inspect.isawaitable(value):
                            value = await value
                    entry = _run_entry(index, name, s.serialize(value))
                    break
                except TerminalError as e:
                    entry = _run_entry(index, name, failure=Failure(e.status_code, e.message))
                    break
                except Exception as e:
                    if not retry_in_place:
                        raise
                    spent = timedelta(seconds=_time.monotonic() - started)
                    out_of_attempts = opts.max_attempts is not None and attempt >= opts.max_attempts
                    out_of_time = (
                        opts.max_retry_duration is not None and spent >= opts.max_retry_duration
                    )
                    if out_of_attempts or out_of_time:
                        msg = f"ctx.run({name!r}) failed after {attempt} attempts: {type(e).__name__}: {e}"
                        entry = _run_entry(index, name, failure=Failure(500, msg))
                        break
                    await asyncio.sleep(delay)
                    delay = min(
                        delay * (opts.retry_interval_factor or 2.0),
                        (opts.max_retry_interval or timedelta(seconds=10)).total_seconds(),
                    )
            self._step_recorded(index, fut, entry)
            awaiting_ack = True
        except BaseException as e:
            self._step_failed(fut, e)
        finally:
            if not awaiting_ack:
                self._busy(-1)

    # -- calls
    def _call(
        self,
        service: str,
        handler: str,
        key: str | None,
        arg_json: str,
        idem: str | None,
        headers: dict[str, str] | None,
        convert: Callable[[str | None], Any],
        workflow_main: bool = False,
    ) -> _CallFuture:
        index, rec = self._next_entry(EntryKind.CALL, f"{service}/{handler}")
        if rec is not None:
            target = json.loads(rec.payload or "{}").get("invocation_id", "")
        else:
            target = self._target_id(service, handler, key, idem, workflow_main)
        fut = self._remote_future(index, rec)
        if rec is None:
            payload = json.dumps(
                {
                    "service": service,
                    "handler": handler,
                    "key": key,
                    "input": arg_json,
                    "headers": headers or {},
                    "idempotency_key": idem,
                    "invocation_id": target,
                }
            )
            self._publish(JournalEntry(index, EntryKind.CALL, f"{service}/{handler}", payload))
        return _CallFuture(self, fut, index, target, convert)

    def _send(
        self,
        service: str,
        handler: str,
        key: str | None,
        arg_json: str,
        delay: timedelta | None,
        idem: str | None,
        headers: dict[str, str] | None,
        workflow_main: bool = False,
    ) -> str:
        name = f"{service}/{handler}"
        index, rec = self._next_entry(EntryKind.ONE_WAY_CALL, name)
        if rec is not None:
            return json.loads(rec.payload or "{}").get("invocation_id", "")
        target = self._target_id(service, handler, key, idem, workflow_main)
        payload = json.dumps(
            {
                "service": service,
                "handler": handler,
                "key": key,
                "input": arg_json,
                "headers": headers or {},
                "idempotency_key": idem,
                "invocation_id": target,
                "delay_ms": int(delay.total_seconds() * 1000) if delay else 0,
            }
        )
        self._publish(
            JournalEntry(
                index, EntryKind.ONE_WAY_CALL, name, payload, json.dumps(target), None, True
            )
        )
        return target

    @staticmethod
    def _target_id(
        service: str, handler: str, key: str | None, idem: str | None, workflow_main: bool
    ) -> str:
        """A new invocation id, or the one an idempotency key (or a workflow id) names:
        the runtime derives the same, so a repeated call reaches the same invocation."""
        if workflow_main:
            return idempotent_invocation_id(idempotency_scope(service, handler, key, True), "run")
        if idem:
            return idempotent_invocation_id(idempotency_scope(service, handler, key, False), idem)
        return new_invocation_id()

    def _awakeable(
        self, convert: Callable[[str | None], Any], schema: dict | None = None
    ) -> tuple[str, _Future]:
        index, rec = self._next_entry(EntryKind.AWAKEABLE, None)
        if rec is not None:
            awk_id = json.loads(rec.payload or "{}")["id"]
        else:
            awk_id = "awk_" + secrets.token_urlsafe(18)
        fut = self._remote_future(index, rec)
        if rec is None:
            # "schema": the expected type, for the dashboard's resolve form
            payload = {"id": awk_id, **({"schema": schema} if schema else {})}
            self._publish(JournalEntry(index, EntryKind.AWAKEABLE, None, json.dumps(payload)))
        return awk_id, _Future(self, fut, index, remote=True, convert=convert)

    # -- combinators
    def _own(self, futures: tuple[Any, ...] | list[Any]) -> list[_Future]:
        out = []
        for f in futures:
            if not isinstance(f, _Future) or f._ex is not self:
                raise InvalidUsageError(
                    "durable combinators take durable futures of this invocation (from "
                    f"ctx.run, ctx.sleep, calls, awakeables...), not {type(f).__name__}"
                )
            out.append(f)
        return out

    def _order_key(self, f: _Future) -> tuple[int, int, int]:
        return self._done_at.get(f._index if f._index is not None else -1, (2, 0, 0))

    async def _block_on(self, futures: list[_Future], mode: str) -> None:
        """Wait for the futures (``asyncio.FIRST_COMPLETED`` or ``ALL_COMPLETED``) with no
        task per future, counting the remote ones as awaited (so the handler may suspend)."""
        pending = [f for f in futures if not f.done()]
        if not pending:
            return
        remote = [f._index for f in pending if f._remote and f._index is not None]
        for i in remote:
            self._awaiting[i] = self._awaiting.get(i, 0) + 1
        self._maybe_suspend()
        try:
            await asyncio.wait([f._fut for f in pending], return_when=mode)
        finally:
            for i in remote:
                n = self._awaiting.get(i, 0) - 1
                if n <= 0:
                    self._awaiting.pop(i, None)
                else:
                    self._awaiting[i] = n
            self._cancel_suspend()
            self._maybe_suspend()
        if self._closed:
            raise SuspendedError()

    async def wait_completed(
        self, futures: list[_Future], name: str
    ) -> tuple[list[_Future], list[_Future]]:
        """Wait until at least one future is done; ``(done, pending)``, done in completion
        order. The outcome is journaled (a ``combinator`` entry listing the done futures),
        so a replay returns the same ``done`` even when more futures have completed by
        then, or completed in another order."""
        index, rec = self._next_entry(EntryKind.COMBINATOR, name)
        indexes = [f._index for f in futures]
        if rec is not None:
            recorded = json.loads(rec.payload or "{}").get("futures")
            by_index = {f._index: f for f in futures}
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
                    json.dumps({"futures": indexes}),
                    json.dumps([f._index for f in done]),
                    None,
                    True,
                )
            )
        done_ids = {id(f) for f in done}
        return done, [f for f in futures if id(f) not in done_ids]

    async def gather(self, futures: list[_Future]) -> None:
        """Wait until every future is done. Nothing to journal: the outcome does not
        depend on the order in which they complete."""
        await self._block_on(futures, asyncio.ALL_COMPLETED)

    async def with_timeout(self, fut: _Future, timeout: timedelta) -> Any:
        timer = self.ctx.sleep(timeout)
        done, _ = await self.wait_completed([fut, timer], "with_timeout")
        if done[0] is fut:
            return await fut
        await timer  # a cancelled invocation's timer raises the cancellation, not a timeout
        raise DurableTimeoutError(
            f"timed out after {timeout} (durable timer, entry {timer._index})"
        )

    # -- suspension
    def _begin_await(self, index: int | None) -> None:
        if index is None:
            return
        self._awaiting[index] = self._awaiting.get(index, 0) + 1
        self._maybe_suspend()

    def _end_await(self, index: int | None) -> None:
        if index is None:
            return
        n = self._awaiting.get(index, 0) - 1
        if n <= 0:
            self._awaiting.pop(index, None)
        else:
            self._awaiting[index] = n
        # Restart the inactivity delay; if other awaits still wait on the runtime (one
        # branch of a gather woke up, the others did not), the handler may still suspend.
        self._cancel_suspend()
        self._maybe_suspend()

    def _busy(self, delta: int) -> None:
        self._local_busy += delta
        if self._local_busy > 0:
            self._cancel_suspend()
        else:
            self._maybe_suspend()

    def _cancel_suspend(self) -> None:
        if self._suspend_handle is not None:
            self._suspend_handle.cancel()
            self._suspend_handle = None

    def _timer_started(self, fut: _Future, ms: int) -> None:
        """Note when a sleep is due (on this loop's clock), for :meth:`_maybe_suspend`."""
        if fut.done() or fut._index is None or self.suspend_after <= 0:
            return
        i = fut._index
        rec = self.journal[i] if i < self.replay_len else None
        wake_ms = json.loads(rec.payload or "{}").get("wake_at") if rec is not None else None
        if wake_ms is not None:  # recorded by the runtime: the timer's own due time
            self._sleep_due[i] = self._loop.time() + wake_ms / 1000.0 - _time.time()
        else:
            self._sleep_due[i] = self._loop.time() + ms / 1000.0

    def _maybe_suspend(self) -> None:
        if self._closed or self._local_busy > 0 or not self._awaiting or self._suspend_handle:
            return
        delay = self.suspend_after
        if delay > 0:
            waiting = [
                i for i in self._awaiting if i in self._remote and not self._remote[i].done()
            ]
            if waiting and all(i in self._sleep_due for i in waiting):
                now = self._loop.time()
                first = min(self._sleep_due[i] for i in waiting) - now
                last = max(self._sleep_due[i] for i in waiting) - now
                if last <= delay:
                    # only timers due before the suspension would pay off (a 1 s sleep
                    # with a 1 s delay): stay, and suspend only if they are late
                    delay += max(last, 0.0)
                elif first > delay:
                    # only timers due after the delay: nothing but a cancellation can
                    # complete them sooner, so waiting in memory is of no use
                    delay = 0.0
        self._suspend_handle = self._loop.call_later(delay, self._suspend_now)

    def _suspend_now(self) -> None:
        self._suspend_handle = None
        if self._closed or self._local_busy > 0 or not self._awaiting:
            return
        waiting = tuple(
            sorted(i for i in self._awaiting if i in self._remote and not self._remote[i].done())
        )
        if not waiting or waiting[-1] >= self._next_emit:
            # nothing to wait on, or an awaited entry the runtime has not been sent yet
            # (held behind a combinator still deciding): keep running
            return
        # Flush entries still waiting behind a run body? None can be: busy == 0 here.
        self._emit(Suspend(self.start.invocation_id, self.start.epoch, waiting))
        self._close()
        for fut in self._remote.values():
            if not fut.done():
                fut.set_exception(SuspendedError())

    def _close(self) -> None:
        self._closed = True
        self._cancel_suspend()

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
    async def run(self) -> None:
        """Run the handler to its end, suspension, failure or abort."""
        self._task = asyncio.current_task()
        self._run_error: Exception | None = None
        _logging.current_executor.set(self)
        s = self.start
        try:
            if self.hdef.arity == 2:
                try:
                    arg = _serde.deserialize(self.journal[0].payload, self.hdef.input_type)
                except (TypeError, ValueError) as e:
                    raise TerminalError(
                        f"invalid input for {self.hdef.service_name}/{self.hdef.name}: {e}", 400
                    ) from e
                result = await self.hdef.fn(self.ctx, arg)
            else:
                result = await self.hdef.fn(self.ctx)
            if self._nondeterminism is not None:
                raise self._nondeterminism
            self._check_journal_consumed()
            if self._run_tasks:  # run bodies started but never awaited: let them land
                await asyncio.gather(*list(self._run_tasks), return_exceptions=True)
            if self._run_error is not None:
                raise self._run_error
            try:
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
                e = self._run_error
                stack = "".join(traceback.format_exception(e))
                self._emit(
                    AttemptFailed(s.invocation_id, s.epoch, f"{type(e).__name__}: {e}", stack)
                )
            else:
                raise
        except NonDeterminismError as e:
            self._emit(AttemptFailed(s.invocation_id, s.epoch, str(e), "", nondeterminism=True))
        except TerminalError as e:
            if self._nondeterminism is not None:
                e2 = self._nondeterminism
                self._emit(
                    AttemptFailed(s.invocation_id, s.epoch, str(e2), "", nondeterminism=True)
                )
            else:
                try:
                    self._check_journal_consumed()
                except NonDeterminismError as e2:
                    self._emit(
                        AttemptFailed(s.invocation_id, s.epoch, str(e2), "", nondeterminism=True)
                    )
                else:
                    self._emit(
                        Output(s.invocation_id, s.epoch, failure=Failure(e.status_code, e.message))
                    )
        except Exception as e:
            if self._nondeterminism is not None:
                e2 = self._nondeterminism
                self._emit(
                    AttemptFailed(s.invocation_id, s.epoch, str(e2), "", nondeterminism=True)
                )
            else:
                stack = "".join(traceback.format_exception(e))
                self._emit(
                    AttemptFailed(s.invocation_id, s.epoch, f"{type(e).__name__}: {e}", stack)
                )
        finally:
            self._close()
            for t in list(self._run_tasks):
                t.cancel()
