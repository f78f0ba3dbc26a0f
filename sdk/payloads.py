"""Typed journal payloads: what each kind of entry records as its request.

A :class:`~durable.messages.JournalEntry` carries its payload as text, so the runtime,
the store and the admin views never need the SDK's classes. This module is the one place
that text is written and read: one frozen dataclass per entry kind that has a payload,
:func:`encode` to text and :func:`decode` back. The text is exactly what journals hold
(``json.dumps`` of the fields in this order), so stored journals read the same.

Kinds without a payload (``time``, ``get_state``, ``clear_state``,
``clear_all_state``, ``state_keys``, ``peek_promise``, ``output``) decode to ``None``.
``input`` and ``set_state`` carry a value's JSON text as it is, not an object.

Example:
    >>> encode(SleepPayload(duration_ms=1000))
    '{"duration_ms": 1000}'
    >>> decode(EntryKind.SLEEP, '{"duration_ms": 1000, "wake_at": 1767225600000}').wake_at
    1767225600000
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .messages import EntryKind, Failure

__all__ = [
    "Payload",
    "InputPayload",
    "SetStatePayload",
    "SleepPayload",
    "RunPayload",
    "CallPayload",
    "SendPayload",
    "AwakeablePayload",
    "CompleteAwakeablePayload",
    "GetPromisePayload",
    "CompletePromisePayload",
    "CancelPayload",
    "AttachPayload",
    "CombinatorPayload",
    "encode",
    "decode",
    "payload_class",
]


def _object(text: str | None, kind: EntryKind) -> dict[str, Any]:
    """The JSON object a payload holds (``{}`` for none)."""
    value = json.loads(text or "{}")
    if not isinstance(value, dict):
        raise ValueError(
            f"the payload of a {kind.value} entry is not a JSON object: {(text or '')[:80]!r} "
            "(was the journal written by another program?)"
        )
    return value


def _failure_of(value: Any) -> Failure | None:
    return Failure(value["code"], value["message"]) if value else None


def _failure_json(f: Failure) -> dict[str, Any]:
    return {"code": f.code, "message": f.message}


class Payload:
    """Base of the payload classes: ``kind`` names the entry kind each one is for."""

    __slots__ = ()
    kind: ClassVar[EntryKind]

    def to_json(self) -> str | None:
        raise NotImplementedError

    @classmethod
    def from_json(cls, text: str | None) -> Payload:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class InputPayload(Payload):
    """Entry 0: the request body (JSON text, kept as it is)."""

    kind: ClassVar[EntryKind] = EntryKind.INPUT
    value: str | None

    def to_json(self) -> str | None:
        return self.value

    @classmethod
    def from_json(cls, text: str | None) -> InputPayload:
        return cls(text)


@dataclass(frozen=True, slots=True)
class SetStatePayload(Payload):
    """``ctx.set``: the new value's JSON text, kept as it is."""

    kind: ClassVar[EntryKind] = EntryKind.SET_STATE
    value: str | None

    def to_json(self) -> str | None:
        return self.value

    @classmethod
    def from_json(cls, text: str | None) -> SetStatePayload:
        return cls(text)


@dataclass(frozen=True, slots=True)
class SleepPayload(Payload):
    """``ctx.sleep``: the duration asked; ``wake_at`` (ms since the epoch) is added by
    the runtime when it records the timer."""

    kind: ClassVar[EntryKind] = EntryKind.SLEEP
    duration_ms: int = 0
    wake_at: int | None = None

    def to_json(self) -> str:
        if self.wake_at is None:
            return json.dumps({"duration_ms": self.duration_ms})
        return json.dumps({"duration_ms": self.duration_ms, "wake_at": self.wake_at})

    @classmethod
    def from_json(cls, text: str | None) -> SleepPayload:
        p = _object(text, cls.kind)
        return cls(p.get("duration_ms", 0), p.get("wake_at"))


@dataclass(frozen=True, slots=True)
class RunPayload(Payload):
    """``ctx.run``: how long the body ran (ms, with its retries in place), measured by
    the worker; ``None`` in journals written before it was recorded."""

    kind: ClassVar[EntryKind] = EntryKind.RUN
    duration_ms: float | None = None

    def to_json(self) -> str | None:
        if self.duration_ms is None:
            return None
        return run_payload_text(self.duration_ms)

    @classmethod
    def from_json(cls, text: str | None) -> RunPayload:
        d = _object(text, cls.kind).get("duration_ms")
        return cls(float(d) if isinstance(d, (int, float)) else None)


def run_payload_text(duration_ms: float) -> str:
    """A run entry's payload text (the hot path: formatted, not ``json.dumps``)."""
    return f'{{"duration_ms": {duration_ms:.3f}}}'


@dataclass(frozen=True, slots=True)
class CallPayload(Payload):
    """A call: the target, its input (JSON text) and the callee's invocation id."""

    kind: ClassVar[EntryKind] = EntryKind.CALL
    service: str = ""
    handler: str = ""
    key: str | None = None
    input: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    invocation_id: str = ""

    def _fields(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "handler": self.handler,
            "key": self.key,
            "input": self.input,
            "headers": self.headers,
            "idempotency_key": self.idempotency_key,
            "invocation_id": self.invocation_id,
        }

    def to_json(self) -> str:
        return json.dumps(self._fields())

    @classmethod
    def from_json(cls, text: str | None) -> CallPayload:
        p = _object(text, cls.kind)
        return cls(
            p.get("service", ""),
            p.get("handler", ""),
            p.get("key"),
            p.get("input"),
            p.get("headers") or {},
            p.get("idempotency_key"),
            p.get("invocation_id", ""),
        )


@dataclass(frozen=True, slots=True)
class SendPayload(CallPayload):
    """A one-way send: a call's fields and the delay before the callee starts."""

    kind: ClassVar[EntryKind] = EntryKind.ONE_WAY_CALL
    delay_ms: int = 0

    def to_json(self) -> str:
        return json.dumps({**self._fields(), "delay_ms": self.delay_ms})

    @classmethod
    def from_json(cls, text: str | None) -> SendPayload:
        p = _object(text, cls.kind)
        return cls(
            p.get("service", ""),
            p.get("handler", ""),
            p.get("key"),
            p.get("input"),
            p.get("headers") or {},
            p.get("idempotency_key"),
            p.get("invocation_id", ""),
            p.get("delay_ms") or 0,
        )


@dataclass(frozen=True, slots=True)
class AwakeablePayload(Payload):
    """``ctx.awakeable``: its id, and the expected value's JSON schema (for the
    dashboard's resolve form), if known."""

    kind: ClassVar[EntryKind] = EntryKind.AWAKEABLE
    id: str = ""
    schema: dict[str, Any] | None = None

    def to_json(self) -> str:
        if self.schema:
            return json.dumps({"id": self.id, "schema": self.schema})
        return json.dumps({"id": self.id})

    @classmethod
    def from_json(cls, text: str | None) -> AwakeablePayload:
        p = _object(text, cls.kind)
        return cls(p.get("id", ""), p.get("schema"))


@dataclass(frozen=True, slots=True)
class CompleteAwakeablePayload(Payload):
    """``ctx.resolve_awakeable`` (``result``, JSON text) or ``reject_awakeable``
    (``failure``) of the awakeable ``id``."""

    kind: ClassVar[EntryKind] = EntryKind.COMPLETE_AWAKEABLE
    id: str = ""
    result: str | None = None
    failure: Failure | None = None

    def to_json(self) -> str:
        if self.failure is not None:
            return json.dumps({"id": self.id, "failure": _failure_json(self.failure)})
        return json.dumps({"id": self.id, "result": self.result})

    @classmethod
    def from_json(cls, text: str | None) -> CompleteAwakeablePayload:
        p = _object(text, cls.kind)
        return cls(p.get("id", ""), p.get("result"), _failure_of(p.get("failure")))


@dataclass(frozen=True, slots=True)
class GetPromisePayload(Payload):
    """``promise.value()``: the expected value's JSON schema, if known (no payload
    without one)."""

    kind: ClassVar[EntryKind] = EntryKind.GET_PROMISE
    schema: dict[str, Any] | None = None

    def to_json(self) -> str | None:
        return json.dumps({"schema": self.schema}) if self.schema else None

    @classmethod
    def from_json(cls, text: str | None) -> GetPromisePayload:
        return cls(_object(text, cls.kind).get("schema"))


@dataclass(frozen=True, slots=True)
class CompletePromisePayload(Payload):
    """``promise.resolve`` (``result``, JSON text) or ``promise.reject`` (``failure``);
    also the body the admin API's promise resolve sends the engine."""

    kind: ClassVar[EntryKind] = EntryKind.COMPLETE_PROMISE
    result: str | None = None
    failure: Failure | None = None

    def to_json(self) -> str:
        if self.failure is not None:
            return json.dumps({"failure": _failure_json(self.failure)})
        return json.dumps({"result": self.result})

    @classmethod
    def from_json(cls, text: str | None) -> CompletePromisePayload:
        p = _object(text, cls.kind)
        return cls(p.get("result"), _failure_of(p.get("failure")))


@dataclass(frozen=True, slots=True)
class CancelPayload(Payload):
    """``ctx.cancel_invocation``: the invocation to cancel."""

    kind: ClassVar[EntryKind] = EntryKind.CANCEL_INVOCATION
    invocation_id: str = ""

    def to_json(self) -> str:
        return json.dumps({"invocation_id": self.invocation_id})

    @classmethod
    def from_json(cls, text: str | None) -> CancelPayload:
        return cls(_object(text, cls.kind).get("invocation_id", ""))


@dataclass(frozen=True, slots=True)
class AttachPayload(Payload):
    """``ctx.attach_invocation``: the invocation whose result to wait for."""

    kind: ClassVar[EntryKind] = EntryKind.ATTACH_INVOCATION
    invocation_id: str = ""

    def to_json(self) -> str:
        return json.dumps({"invocation_id": self.invocation_id})

    @classmethod
    def from_json(cls, text: str | None) -> AttachPayload:
        return cls(_object(text, cls.kind).get("invocation_id", ""))


@dataclass(frozen=True, slots=True)
class CombinatorPayload(Payload):
    """A combinator's decision point: the journal indexes of the futures it was given
    (its result lists the ones it saw done, in order)."""

    kind: ClassVar[EntryKind] = EntryKind.COMBINATOR
    futures: tuple[int, ...] | None = ()

    def to_json(self) -> str:
        return json.dumps({"futures": None if self.futures is None else list(self.futures)})

    @classmethod
    def from_json(cls, text: str | None) -> CombinatorPayload:
        f = _object(text, cls.kind).get("futures")
        return cls(None if f is None else tuple(f))


_BY_KIND: dict[EntryKind, type[Payload]] = {
    c.kind: c
    for c in (
        InputPayload,
        SetStatePayload,
        SleepPayload,
        RunPayload,
        CallPayload,
        SendPayload,
        AwakeablePayload,
        CompleteAwakeablePayload,
        GetPromisePayload,
        CompletePromisePayload,
        CancelPayload,
        AttachPayload,
        CombinatorPayload,
    )
}


def payload_class(kind: EntryKind) -> type[Payload] | None:
    """The payload class of an entry kind (None: the kind records no payload)."""
    return _BY_KIND.get(kind)


def encode(payload: Payload) -> str | None:
    """A payload as the text a journal entry holds (None: nothing to record)."""
    return payload.to_json()


def decode(kind: EntryKind, text: str | None) -> Payload | None:
    """The payload of an entry of ``kind`` from its text (None for a kind without one).

    Missing fields take their defaults (``None`` text is an empty object); text that is
    not a JSON object raises ``ValueError``.
    """
    cls = _BY_KIND.get(kind)
    return None if cls is None else cls.from_json(text)
