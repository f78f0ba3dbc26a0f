"""durable's ``Context`` API over restate-sdk's context, for ``durable serve``.

Every value crosses restate as raw bytes (restate's ``BytesSerde``) holding the JSON text
durable's own serde writes, so inputs, outputs, state, ``ctx.run`` results and promise
values have the JSON shapes ``durable dev`` gives them. The checks durable makes (state
in a Service, a write in a shared handler) are made here the same way.
"""

from __future__ import annotations

import dataclasses
import random as _random
import uuid as _uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from durable import serde as _serde
from durable.context import (
    AttemptFinishedEvent,
    CallFuture,
    DurableFuture,
    DurablePromise,
    Request,
    RunOptions,
    ScopedContext,
    SendHandle,
    WorkflowContext,
)
from durable.context_impl import _preview, check_state_use
from durable.definitions import HandlerDef, handler_of
from durable.exceptions import InvalidUsageError, TerminalError
from durable.steps import call_action
from restate.context import RunOptions as RRunOptions
from restate.serde import BytesSerde as RBytesSerde

from .futures import (
    ServeCallFuture,
    ServeFuture,
    ServeSendHandle,
    Waits,
    decode,
    encode,
    text,
    to_restate,
)

__all__ = ["ServeContext", "durable_dev_only"]

_BYTES = RBytesSerde()


def durable_dev_only(feature: str) -> TerminalError:
    """The error of a ctx feature restate-sdk cannot give (listed in serve-mapping.md)."""
    return TerminalError(
        f"{feature} is durable dev only: restate-sdk-python 1.3 does not give it, so it "
        "is not available under `durable serve` (see docs/serve-mapping.md)",
        501,
    )


class _AttemptFinished(AttemptFinishedEvent):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def is_set(self) -> bool:
        return bool(self._inner.is_set())

    async def wait(self) -> None:
        await self._inner.wait()


_SHOWN = ("id", "headers", "body", "idempotency_key")


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class ServeRequest(Request):
    """restate's request as durable's; ``attempt`` is not known to restate-sdk 1.3 (only
    reading it fails: printing or comparing a request leaves it out)."""

    def __repr__(self) -> str:
        return "Request(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in _SHOWN) + ")"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServeRequest):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _SHOWN)

    __hash__ = None  # type: ignore[assignment]

    @property  # type: ignore[override, misc]
    def attempt(self) -> int:
        raise durable_dev_only("ctx.request().attempt")

    @attempt.setter
    def attempt(self, _value: int) -> None:
        pass  # the dataclass __init__ sets the field's default: nothing to keep


def _none(_raw: bytes | None) -> None:
    return None


def _raw_bytes(raw: bytes | None) -> bytes:
    return b"" if raw is None else bytes(raw)


def _json(raw: bytes | None) -> Any:
    return _serde.deserialize(text(raw))


class _Promise(DurablePromise[Any]):
    def __init__(self, ctx: ServeContext, name: str, serde: Any, type_hint: Any) -> None:
        self._ctx = ctx
        self._inner = ctx._r.promise(name, serde=_BYTES)
        self._serde = _serde.check_serde(serde, "promise serde") or _serde.JsonSerde(type_hint)

    def _decode(self, raw: bytes | None) -> Any:
        return decode(self._serde, raw)

    def value(self) -> DurableFuture[Any]:
        return ServeFuture(self._ctx._waits, self._inner.value(), self._decode)

    def resolve(self, value: Any) -> DurableFuture[None]:
        data = encode(self._serde, value)
        return ServeFuture(self._ctx._waits, self._inner.resolve(data), _none)

    def reject(self, message: str, code: int = 500) -> DurableFuture[None]:
        return ServeFuture(self._ctx._waits, self._inner.reject(message, code), _none)

    def peek(self) -> DurableFuture[Any]:
        return ServeFuture(
            self._ctx._waits,
            self._inner.peek(),
            lambda raw: None if raw is None else self._decode(raw),
        )


def _call_arg(arg: Any, hdef: HandlerDef | None) -> bytes:
    """A call's input as bytes: nothing for a handler without input (Restate refuses a
    body there), the callee's ``input_serde``'s bytes, ``bytes`` as given, else JSON."""
    if hdef is not None and hdef.arity == 1:
        return b""
    if hdef is not None and hdef.input_serde is not None:
        return encode(hdef.input_serde, arg)
    if isinstance(arg, (bytes, bytearray)):
        return bytes(arg)
    if arg is None and hdef is None:
        return b""  # the callee reads no body as None, as durable dev's "null"
    return _serde.serialize(arg).encode()


def _result(tpe: Any) -> Callable[[bytes | None], Any]:
    """How a call's result bytes become the callee's output type (or its output_serde's)."""
    h = handler_of(tpe)
    if h.output_serde is not None:
        serde = h.output_serde
        return lambda raw: decode(serde, raw)
    return lambda raw: _serde.deserialize(text(raw), h.output_type)


def _run_body(
    name: str, action: Callable[..., Any], s: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Callable[[], Any]:
    """The body restate runs: the action (sync ones on a thread, as durable does), its
    result as durable's JSON bytes; durable's errors as restate's."""

    async def body() -> bytes:
        try:
            return encode(s, await call_action(action, args, kwargs))
        except Exception as e:
            err = to_restate(e)
            if err is e:
                raise
            raise err from e

    body.__name__ = f"ctx.run({name!r})"
    return body


class ServeContext(WorkflowContext):
    """Every durable context class over one restate context; kind checks guard writes."""

    def __init__(self, rctx: Any, hdef: HandlerDef) -> None:
        self._r = rctx
        self._hdef = hdef
        self._waits = Waits(rctx)
        self._waits.ctx = self
        # this attempt's own state writes, in order: restate-sdk 1.3 answers state_keys()
        # without the keys cleared earlier in the same invocation (durable dev does not)
        self._writes: dict[str, bool] = {}
        self._wiped = False

    @property
    def waits(self) -> Waits:
        return self._waits

    def _future(self, inner: Any, convert: Callable[[bytes | None], Any]) -> ServeFuture:
        return ServeFuture(self._waits, inner, convert)

    # -- request / determinism helpers
    def request(self) -> Request:
        r = self._r.request()
        return ServeRequest(
            id=r.id,
            headers=dict(r.headers),
            body=bytes(r.body),
            attempt_headers=dict(r.attempt_headers),
            attempt_finished_event=_AttemptFinished(r.attempt_finished_event),
            idempotency_key=r.idempotency_key,
            scope=r.scope,
            limit_key=r.limit_key,
        )

    def key(self) -> str:
        if self._hdef.service.kind == "service":
            raise InvalidUsageError("ctx.key() is only available in virtual objects and workflows")
        return str(self._r.key())

    def random(self) -> _random.Random:
        return self._r.random()  # type: ignore[no-any-return]

    def uuid(self) -> _uuid.UUID:
        return self._r.uuid()  # type: ignore[no-any-return]

    async def time(self) -> float:
        return float(await self._future(self._r.time(), lambda v: v))

    # -- journaled actions
    def run(
        self,
        name: str,
        action: Callable[..., Any],
        *args: Any,
        serde: Any = None,
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
        return self._run(name, action, opts, call_args, kwargs)

    def run_typed(
        self,
        name: str,
        action: Callable[..., Any],
        options: RunOptions[Any] | None = None,
        /,
        *args: Any,
        **kwargs: Any,
    ) -> DurableFuture[Any]:
        return self._run(name, action, options or RunOptions(), args, kwargs)

    def _run(
        self,
        name: str,
        action: Callable[..., Any],
        opts: RunOptions[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> DurableFuture[Any]:
        s = (
            _serde.check_serde(opts.serde, f"ctx.run({name!r}) serde")
            if opts.serde is not None
            else None
        ) or _serde.JsonSerde(
            opts.type_hint if opts.type_hint is not None else _serde.return_type(action)
        )
        ropts: RRunOptions[Any] = RRunOptions(
            serde=_BYTES,
            max_attempts=opts.max_attempts,
            max_duration=opts.retry_budget,
            initial_retry_interval=opts.initial_retry_interval,
            max_retry_interval=opts.max_retry_interval,
            retry_interval_factor=opts.retry_interval_factor,
        )
        inner = self._r.run_typed(name, _run_body(name, action, s, args, kwargs), ropts)
        return self._future(inner, lambda raw: decode(s, raw))

    def sleep(self, delta: timedelta, name: str | None = None) -> DurableFuture[None]:
        return self._waits.sleep(delta, name)

    # -- state
    def _check_state(self, write: bool, what: str) -> None:
        check_state_use(self._hdef, write, what)

    async def get(
        self,
        name: str,
        serde: Any = None,
        type_hint: Any = None,
        entry_name: str | None = None,
    ) -> Any:
        self._check_state(False, "get")
        s = _serde.check_serde(serde, "ctx.get serde") or _serde.JsonSerde(type_hint)
        inner = self._r.get(name, serde=_BYTES, entry_name=entry_name)
        return await self._future(inner, lambda raw: None if raw is None else decode(s, raw))

    async def state_keys(self, entry_name: str | None = None) -> list[str]:
        self._check_state(False, "state_keys")
        told = await self._future(self._r.state_keys(entry_name), lambda v: v)
        keys: set[str] = set() if self._wiped else set(told or ())
        for name, present in self._writes.items():
            (keys.add if present else keys.discard)(name)
        return sorted(keys)

    def set(self, name: str, value: Any, serde: Any = None, entry_name: str | None = None) -> None:
        self._check_state(True, "set")
        s = _serde.check_serde(serde, "ctx.set serde")
        data = _serde.serialize(value).encode() if s is None else encode(s, value)
        self._r.set(name, data, serde=_BYTES, entry_name=entry_name)
        self._writes[name] = True

    def clear(self, name: str, entry_name: str | None = None) -> None:
        self._check_state(True, "clear")
        self._r.clear(name, entry_name)
        self._writes[name] = False

    def clear_all(self, entry_name: str | None = None) -> None:
        self._check_state(True, "clear_all")
        self._r.clear_all(entry_name)
        self._writes.clear()
        self._wiped = True

    def promise(self, name: str, serde: Any = None, type_hint: Any = None) -> DurablePromise[Any]:
        if self._hdef.service.kind != "workflow":
            raise InvalidUsageError("ctx.promise() is only available in workflows")
        return _Promise(self, name, serde, type_hint)

    # -- calls
    def _call(
        self,
        service: str,
        handler: str,
        key: str | None,
        data: bytes,
        idem: str | None,
        headers: dict[str, str] | None,
        convert: Callable[[bytes | None], Any],
    ) -> CallFuture[Any]:
        inner = self._r.generic_call(
            service, handler, data, key=key, idempotency_key=idem, headers=headers
        )
        return ServeCallFuture(self._waits, inner, convert)

    def _send(
        self,
        service: str,
        handler: str,
        key: str | None,
        data: bytes,
        delay: timedelta | None,
        idem: str | None,
        headers: dict[str, str] | None,
    ) -> SendHandle:
        inner = self._r.generic_send(
            service,
            handler,
            data,
            key=key,
            send_delay=delay,
            idempotency_key=idem,
            headers=headers,
        )
        return ServeSendHandle(inner)

    def service_call(
        self,
        tpe: Any,
        arg: Any = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> CallFuture[Any]:
        h = handler_of(tpe)
        data = _call_arg(arg, h)
        return self._call(
            h.service_name, h.name, None, data, idempotency_key, headers, _result(tpe)
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
        data = _call_arg(arg, h)
        return self._call(h.service_name, h.name, key, data, idempotency_key, headers, _result(tpe))

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
        data = _call_arg(arg, h)
        return self._send(h.service_name, h.name, None, data, send_delay, idempotency_key, headers)

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
        data = _call_arg(arg, h)
        return self._send(h.service_name, h.name, key, data, send_delay, idempotency_key, headers)

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
        # restate's generic_call: bytes in, bytes out; a value in: JSON out, as durable dev
        convert = _raw_bytes if isinstance(arg, (bytes, bytearray)) else _json
        data = _call_arg(arg, None)
        return self._call(service, handler, key, data, idempotency_key, headers, convert)

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
        data = _call_arg(arg, None)
        return self._send(service, handler, key, data, send_delay, idempotency_key, headers)

    # -- awakeables, cancellation, attach
    def awakeable(self, serde: Any = None, type_hint: Any = None) -> tuple[str, DurableFuture[Any]]:
        s = _serde.check_serde(serde, "ctx.awakeable serde") or _serde.JsonSerde(type_hint)
        awk_id, inner = self._r.awakeable(serde=_BYTES)
        return awk_id, self._future(inner, lambda raw: decode(s, raw))

    def resolve_awakeable(self, name: str, value: Any, serde: Any = None) -> None:
        s = _serde.check_serde(serde, "ctx.resolve_awakeable serde")
        data = _serde.serialize(value).encode() if s is None else encode(s, value)
        self._r.resolve_awakeable(name, data, serde=_BYTES)

    def reject_awakeable(self, name: str, failure_message: str, failure_code: int = 500) -> None:
        self._r.reject_awakeable(name, failure_message, failure_code)

    def cancel_invocation(self, invocation_id: str) -> None:
        self._r.cancel_invocation(invocation_id)

    def attach_invocation(
        self, invocation_id: str, serde: Any = None, type_hint: Any = None
    ) -> DurableFuture[Any]:
        s = _serde.check_serde(serde, "ctx.attach_invocation serde") or _serde.JsonSerde(type_hint)
        inner = self._r.attach_invocation(invocation_id, serde=_BYTES)
        return self._future(inner, lambda raw: decode(s, raw))

    # -- restate 1.3 previews that durable does not support (the same answer as durable dev)
    def scope(self, scope: str) -> ScopedContext:
        raise TerminalError(_preview("ctx.scope()", "flow-control scopes"), 501)

    def signal(self, name: str, serde: Any = None, type_hint: Any = None) -> Any:
        raise TerminalError(_preview("ctx.signal()", "named signals"), 501)

    def resolve_signal(self, invocation_id: str, name: str, value: Any, serde: Any = None) -> None:
        raise TerminalError(_preview("ctx.resolve_signal()", "named signals"), 501)

    def reject_signal(
        self, invocation_id: str, name: str, failure_message: str, failure_code: int = 500
    ) -> None:
        raise TerminalError(_preview("ctx.reject_signal()", "named signals"), 501)
