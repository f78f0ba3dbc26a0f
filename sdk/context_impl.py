"""The context handlers receive: the one implementation of every class in
:mod:`durable.context`.

It turns each ctx call into a journal request for its invocation's executor through
the narrow :class:`Journal` interface: it checks the call is allowed (state in a
Service, writes in a shared handler), serializes values, builds the entry's typed
payload (:mod:`durable.payloads`) and converts results back to the user's types. The
journal cursor, replay matching and suspension stay in :mod:`durable.executor`.
"""

from __future__ import annotations

import asyncio
import json
import random as _random
import uuid as _uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar, cast

from . import serde as _serde
from .context import (
    AttemptFinishedEvent,
    CallFuture,
    Context,
    DurableFuture,
    DurablePromise,
    Request,
    RunOptions,
    ScopedContext,
    SendHandle,
    WorkflowContext,
)
from .definitions import HandlerDef, handler_of
from .exceptions import InvalidUsageError, TerminalError
from .futures import Done
from .logging import current_executor
from .messages import EntryKind, Failure, Start
from .payloads import (
    AttachPayload,
    CallPayload,
    CancelPayload,
    CompleteAwakeablePayload,
    CompletePromisePayload,
    GetPromisePayload,
    Payload,
    SendPayload,
    SetStatePayload,
)

__all__ = ["ContextImpl", "Journal", "current_context", "check_state_use"]

T = TypeVar("T")


class Journal(Protocol):
    """What the context asks of its executor (all it may touch)."""

    hdef: HandlerDef
    start: Start
    state: dict[str, str]
    rng: _random.Random

    def local_entry(
        self,
        kind: EntryKind,
        name: str | None,
        payload: Payload | None = None,
        result: Callable[[], str | None] | None = None,
    ) -> str | None: ...

    def remote_entry(
        self,
        kind: EntryKind,
        name: str | None,
        payload: Payload | None,
        convert: Callable[[str | None], T],
    ) -> DurableFuture[T]: ...

    def run_step(
        self,
        name: str,
        action: Callable[..., Any],
        opts: RunOptions[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> DurableFuture[Any]: ...

    def sleep(self, delta: timedelta, name: str | None = None) -> DurableFuture[None]: ...

    def call(
        self, payload: CallPayload, workflow_main: bool, convert: Callable[[str | None], T]
    ) -> CallFuture[T]: ...

    def send(self, payload: SendPayload, workflow_main: bool) -> str: ...

    def awakeable(
        self, convert: Callable[[str | None], T], schema: dict[str, Any] | None
    ) -> tuple[str, DurableFuture[T]]: ...

    def attempt_event(self) -> asyncio.Event: ...


class _AttemptFinished(AttemptFinishedEvent):
    def __init__(self, event: asyncio.Event) -> None:
        self._event = event

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


class _SendHandle(SendHandle):
    def __init__(self, ctx: ContextImpl, target_id: str) -> None:
        self._ctx = ctx
        self._target_id = target_id

    async def invocation_id(self) -> str:
        return self._target_id

    def cancel_invocation(self) -> Done:  # type: ignore[override]  # awaitable, eager
        self._ctx.cancel_invocation(self._target_id)
        return Done()


def _none(_raw: str | None) -> None:
    return None


class _Promise(DurablePromise[Any]):
    def __init__(
        self, journal: Journal, name: str, serde: _serde.Serde[Any] | None, type_hint: Any
    ) -> None:
        self._j = journal
        self._name = name
        self._serde = _serde.check_serde(serde, "promise serde") or _serde.JsonSerde(type_hint)
        self._schema = _expected_schema(type_hint)

    def value(self) -> DurableFuture[Any]:
        # the expected type's JSON schema rides along so a person resolving the promise
        # from the dashboard gets an editor prefilled for it (replay matches kind and name)
        return self._j.remote_entry(
            EntryKind.GET_PROMISE,
            self._name,
            GetPromisePayload(self._schema),
            self._decode,
        )

    def _decode(self, raw: str | None) -> Any:
        return _serde.decode_with(self._serde, raw)

    def resolve(self, value: Any) -> DurableFuture[None]:
        payload = CompletePromisePayload(result=_serde.encode_with(self._serde, value))
        return self._j.remote_entry(EntryKind.COMPLETE_PROMISE, self._name, payload, _none)

    def reject(self, message: str, code: int = 500) -> DurableFuture[None]:
        payload = CompletePromisePayload(failure=Failure(code, message))
        return self._j.remote_entry(EntryKind.COMPLETE_PROMISE, self._name, payload, _none)

    def peek(self) -> DurableFuture[Any]:
        return self._j.remote_entry(
            EntryKind.PEEK_PROMISE,
            self._name,
            None,
            lambda r: None if r is None else self._decode(r),
        )


def _expected_schema(type_hint: Any) -> dict[str, Any] | None:
    """The JSON schema of an awaited value's type, or None (never fails the handler)."""
    if type_hint is None:
        return None
    try:
        return _serde.json_schema(type_hint) or None
    except Exception:  # best effort: a form hint, not a contract
        return None


def _clock_reading(raw: str | None) -> float:
    # the runtime completes a TIME entry with its clock's reading, never without a value
    return float(json.loads(cast(str, raw)))


def _arg_json(arg: Any, hdef: HandlerDef | None = None) -> str:
    if hdef is not None and hdef.input_serde is not None:
        return _serde.encode_with(hdef.input_serde, arg)
    if isinstance(arg, (bytes, bytearray)):
        return bytes(arg).decode() or "null"
    return _serde.serialize(arg)


def _out(tpe: Any) -> Callable[[str | None], Any]:
    hdef = handler_of(tpe)
    if hdef.output_serde is not None:
        serde = hdef.output_serde
        return lambda r: _serde.decode_with(serde, r)
    return lambda r: _serde.deserialize(r, hdef.output_type)


def _raw_bytes(raw: str | None) -> bytes:
    return b"" if raw is None else raw.encode()


def check_state_use(hdef: HandlerDef, write: bool, what: str) -> None:
    """Refuse ``ctx.<what>`` where a handler of ``hdef``'s kind may not use state (a
    Service), or may only read it (a shared handler, when ``write``)."""
    if hdef.kind == "service":
        raise InvalidUsageError(
            f"ctx.{what} needs a VirtualObject or Workflow; {hdef.service_name} is a Service"
        )
    if write and hdef.kind == "shared":
        raise TerminalError(
            f"ctx.{what} is not allowed in shared handler {hdef.service_name}/"
            f"{hdef.name}: shared handlers only read state. Make the handler "
            "exclusive (the default kind) to change state.",
            500,
        )


class ContextImpl(WorkflowContext):
    """The one implementation of every context class; kind checks guard writes."""

    def __init__(self, journal: Journal) -> None:
        self._j = journal

    # -- request / determinism helpers
    def request(self) -> Request:
        s = self._j.start
        body = (s.journal[0].payload or "").encode()
        headers = dict(s.headers)
        return Request(
            id=s.invocation_id,
            headers=headers,
            body=body,
            attempt=s.attempt,
            attempt_headers=headers,
            attempt_finished_event=_AttemptFinished(self._j.attempt_event()),
            idempotency_key=headers.get("idempotency-key"),
        )

    def key(self) -> str:
        key = self._j.start.key
        if key is None:
            raise InvalidUsageError("ctx.key() is only available in virtual objects and workflows")
        return key

    def random(self) -> _random.Random:
        return self._j.rng

    def uuid(self) -> _uuid.UUID:
        return _uuid.UUID(int=self._j.rng.getrandbits(128), version=4)

    async def time(self) -> float:
        return await self._j.remote_entry(EntryKind.TIME, None, None, _clock_reading)

    # -- journaled actions
    def run(
        self,
        name: str,
        action: Callable[..., Any],
        *args: Any,
        serde: _serde.Serde[Any] | None = None,
        max_attempts: int | None = None,
        max_retry_duration: timedelta | None = None,
        type_hint: Any = None,
        **kwargs: Any,
    ) -> DurableFuture[Any]:
        call_args = tuple(kwargs.pop("args", None) or ()) + args
        opts: RunOptions[Any] = RunOptions(
            max_attempts=max_attempts,
            max_retry_duration=max_retry_duration,
            serde=serde,
            type_hint=type_hint,
        )
        return self._j.run_step(name, action, opts, call_args, kwargs)

    def run_typed(
        self,
        name: str,
        action: Callable[..., Any],
        options: RunOptions[Any] | None = None,
        /,
        *args: Any,
        **kwargs: Any,
    ) -> DurableFuture[Any]:
        return self._j.run_step(name, action, options or RunOptions(), args, kwargs)

    def sleep(self, delta: timedelta, name: str | None = None) -> DurableFuture[None]:
        return self._j.sleep(delta, name)

    # -- state
    def _check_state(self, write: bool, what: str) -> None:
        check_state_use(self._j.hdef, write, what)

    async def get(
        self,
        name: str,
        serde: _serde.Serde[Any] | None = None,
        type_hint: Any = None,
        entry_name: str | None = None,
    ) -> Any:
        self._check_state(False, "get")
        s = _serde.check_serde(serde, "ctx.get serde") or _serde.JsonSerde(type_hint)
        state = self._j.state
        raw = self._j.local_entry(EntryKind.GET_STATE, name, None, lambda: state.get(name))
        return None if raw is None else _serde.decode_with(s, raw)

    async def state_keys(self, entry_name: str | None = None) -> list[str]:
        self._check_state(False, "state_keys")
        state = self._j.state
        raw = self._j.local_entry(
            EntryKind.STATE_KEYS, None, None, lambda: json.dumps(sorted(state))
        )
        keys: list[str] = json.loads(cast(str, raw))  # recorded, or made just above
        return keys

    def set(
        self,
        name: str,
        value: Any,
        serde: _serde.Serde[Any] | None = None,
        entry_name: str | None = None,
    ) -> None:
        self._check_state(True, "set")
        s = _serde.check_serde(serde, "ctx.set serde")
        text = _serde.serialize(value) if s is None else _serde.encode_with(s, value)
        self._j.local_entry(EntryKind.SET_STATE, name, SetStatePayload(text))
        self._j.state[name] = text

    def clear(self, name: str, entry_name: str | None = None) -> None:
        self._check_state(True, "clear")
        self._j.local_entry(EntryKind.CLEAR_STATE, name)
        self._j.state.pop(name, None)

    def clear_all(self, entry_name: str | None = None) -> None:
        self._check_state(True, "clear_all")
        self._j.local_entry(EntryKind.CLEAR_ALL_STATE, None)
        self._j.state.clear()

    def promise(
        self, name: str, serde: _serde.Serde[Any] | None = None, type_hint: Any = None
    ) -> DurablePromise[Any]:
        if self._j.hdef.service.kind != "workflow":
            raise InvalidUsageError("ctx.promise() is only available in workflows")
        return _Promise(self._j, name, serde, type_hint)

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
        payload = CallPayload(service, handler, key, arg, headers or {}, idem)
        return self._j.call(payload, workflow_main, convert)

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
        delay_ms = int(delay.total_seconds() * 1000) if delay else 0
        payload = SendPayload(service, handler, key, arg, headers or {}, idem, "", delay_ms)
        return _SendHandle(self, self._j.send(payload, workflow_main))

    def service_call(
        self,
        tpe: Any,
        arg: Any = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> CallFuture[Any]:
        h = handler_of(tpe)
        return self._call(
            h.service_name, h.name, None, _arg_json(arg, h), idempotency_key, headers, _out(tpe)
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
            _arg_json(arg, h),
            idempotency_key,
            headers,
            _out(tpe),
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
        return self._send(
            h.service_name, h.name, None, _arg_json(arg, h), send_delay, idempotency_key, headers
        )

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
            _arg_json(arg, h),
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
        scope: str | None = None,
        limit_key: str | None = None,
    ) -> CallFuture[Any]:
        if scope is not None or limit_key is not None:
            raise TerminalError(_preview("generic_call(scope=, limit_key=)", "scopes"), 501)
        # restate's generic_call takes and gives bytes: bytes in, bytes out
        convert = _raw_bytes if isinstance(arg, (bytes, bytearray)) else _serde.deserialize
        return self._call(service, handler, key, _arg_json(arg), idempotency_key, headers, convert)

    def generic_send(
        self,
        service: str,
        handler: str,
        arg: Any = None,
        key: str | None = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        scope: str | None = None,
        limit_key: str | None = None,
    ) -> SendHandle:
        if scope is not None or limit_key is not None:
            raise TerminalError(_preview("generic_send(scope=, limit_key=)", "scopes"), 501)
        return self._send(
            service, handler, key, _arg_json(arg), send_delay, idempotency_key, headers
        )

    # -- awakeables, cancellation, attach
    def awakeable(
        self, serde: _serde.Serde[Any] | None = None, type_hint: Any = None
    ) -> tuple[str, DurableFuture[Any]]:
        s = _serde.check_serde(serde, "ctx.awakeable serde") or _serde.JsonSerde(type_hint)
        return self._j.awakeable(lambda r: _serde.decode_with(s, r), _expected_schema(type_hint))

    def resolve_awakeable(
        self, name: str, value: Any, serde: _serde.Serde[Any] | None = None
    ) -> None:
        s = _serde.check_serde(serde, "ctx.resolve_awakeable serde")
        text = _serde.serialize(value) if s is None else _serde.encode_with(s, value)
        payload = CompleteAwakeablePayload(name, result=text)
        self._j.local_entry(EntryKind.COMPLETE_AWAKEABLE, name, payload)

    def reject_awakeable(self, name: str, failure_message: str, failure_code: int = 500) -> None:
        payload = CompleteAwakeablePayload(name, failure=Failure(failure_code, failure_message))
        self._j.local_entry(EntryKind.COMPLETE_AWAKEABLE, name, payload)

    def cancel_invocation(self, invocation_id: str) -> None:
        payload = CancelPayload(invocation_id)
        self._j.local_entry(EntryKind.CANCEL_INVOCATION, invocation_id, payload)

    def attach_invocation(
        self, invocation_id: str, serde: _serde.Serde[Any] | None = None, type_hint: Any = None
    ) -> DurableFuture[Any]:
        s = _serde.check_serde(serde, "ctx.attach_invocation serde") or _serde.JsonSerde(type_hint)
        return self._j.remote_entry(
            EntryKind.ATTACH_INVOCATION,
            invocation_id,
            AttachPayload(invocation_id),
            lambda r: _serde.decode_with(s, r),
        )

    # -- restate 1.3 previews that durable does not support
    def scope(self, scope: str) -> ScopedContext:
        raise TerminalError(_preview("ctx.scope()", "flow-control scopes"), 501)

    def signal(
        self, name: str, serde: _serde.Serde[Any] | None = None, type_hint: Any = None
    ) -> Any:
        raise TerminalError(_preview("ctx.signal()", "named signals"), 501)

    def resolve_signal(
        self, invocation_id: str, name: str, value: Any, serde: _serde.Serde[Any] | None = None
    ) -> None:
        raise TerminalError(_preview("ctx.resolve_signal()", "named signals"), 501)

    def reject_signal(
        self, invocation_id: str, name: str, failure_message: str, failure_code: int = 500
    ) -> None:
        raise TerminalError(_preview("ctx.reject_signal()", "named signals"), 501)


def _preview(call: str, what: str) -> str:
    return (
        f"{call} is not supported by durable: {what} are a preview of Restate 1.7 that "
        "needs experimental server features; use awakeables or workflow promises instead"
    )


def current_context() -> Context | None:
    """The context of the handler running in this task (None outside handlers)."""
    ex = current_executor.get()
    ctx = getattr(ex, "ctx", None)
    return ctx if isinstance(ctx, Context) else None
