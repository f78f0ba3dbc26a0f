"""Restate 1.7 journals (``sys_journal`` rows) as durable journal entries.

Restate's journal (protocol v2+) records *commands* (what the handler did: ``Run``,
``Call``, ``SetState``...) and *notifications* (what came back: a run's result, a
call's answer, a signal). A durable entry is one command with its outcome, so a command
and the notification carrying its ``completion_id`` become one entry; durable's entry
index is the command's position in that list (entry 0: the input).

Restate records no command when a handler creates an awakeable: the awakeable shows up
only as the signal notification that completes it. Such an entry is placed just before
the first command that carries its id (where the code handed the id on), else where its
signal arrived. That place is a guess: the code may have made it earlier (after the
previous awaited entry), so such an entry (``restate_index`` None) says ``"guessed":
true`` in its payload and a replay may move it earlier (``durable.executor``, pulled).
An awakeable whose id no command carries is known only once its invocation suspends on
it (``pending_signals``). Restate's ``ctx.time()`` is a ``Run`` named ``timestamp`` and
stays one; durable's combinators (``select``, ``with_timeout``...) leave no command, so
their entries are not in a mapped journal (a replay of a pulled copy makes them).
Completion times follow the order of the rows that completed them.

:func:`map_journal` gives :class:`MappedEntry` (entry, times, Restate's indexes);
:func:`journal_entries` the bare entries a replay consumes; :func:`entry_views` the
dicts ``GET /api/invocations/{id}`` shows; :func:`request_of` the input's body and
headers. Rows are dicts with ``index``, ``entry_type``, ``entry_json`` and, optionally,
``appended_at`` (ISO text or datetime), as ``SELECT * FROM sys_journal`` returns them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from durable.messages import EntryKind, Failure, JournalEntry
from durable.payloads import (
    AttachPayload,
    AwakeablePayload,
    CallPayload,
    CancelPayload,
    CompleteAwakeablePayload,
    CompletePromisePayload,
    Payload,
    SendPayload,
    SetStatePayload,
    SleepPayload,
)

__all__ = [
    "MappedEntry",
    "UnknownEntry",
    "map_journal",
    "journal_entries",
    "entry_views",
    "request_of",
    "awakeable_id",
    "invocation_id_bytes",
    "CANCEL_SIGNAL",
    "FIRST_AWAKEABLE_SIGNAL",
]

#: Restate's built-in signal index that cancels an invocation
CANCEL_SIGNAL = 1
#: signal indexes from here on are awakeables (1 to 16 are Restate's own)
FIRST_AWAKEABLE_SIGNAL = 17
_B62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class UnknownEntry(ValueError):
    """A journal row this module cannot read (a newer Restate, or not a journal row)."""


@dataclass(frozen=True, slots=True)
class MappedEntry:
    """One durable entry made from a Restate command (and its completion, if any).

    ``restate_index`` is the command's row in ``sys_journal`` (``None`` for an
    awakeable, which has no command); ``restate_type`` its ``entry_type``;
    ``created_at``/``completed_at`` when the command and its completion were appended.
    """

    entry: JournalEntry
    restate_index: int | None
    restate_type: str
    created_at: datetime | None = None
    completed_at: datetime | None = None


# ---------------------------------------------------------------------------- ids
def invocation_id_bytes(invocation_id: str) -> bytes:
    """The 24 bytes (partition key, uuid) a Restate ``inv_1...`` id encodes."""
    body = invocation_id.removeprefix("inv_")
    if len(body) != 34 or body[0] != "1" or any(c not in _B62 for c in body[1:]):
        raise ValueError(f"not a Restate invocation id: {invocation_id!r}")

    def part(text: str, size: int) -> bytes:
        n = 0
        for c in text:
            n = n * 62 + _B62.index(c)
        return n.to_bytes(size, "little")

    return part(body[1:12], 8) + part(body[12:], 16)


def awakeable_id(invocation_id: str, signal_index: int) -> str:
    """The id Restate gives the awakeable that is signal ``signal_index`` of
    ``invocation_id`` (what ``ctx.awakeable()`` returned to the handler)."""
    raw = invocation_id_bytes(invocation_id) + signal_index.to_bytes(4, "big")
    return "sign_1" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


# ---------------------------------------------------------------------------- values
def _text(raw: Any) -> str | None:
    """A payload (Restate gives a byte array) as the JSON text durable stores; an empty
    payload (a handler's ``None``, no input) as ``None``."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    data = bytes(raw)
    if not data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # not JSON: shown, as durable shows any non-JSON text
        return data.decode("utf-8", "replace")


def _outcome(result: Any) -> tuple[str | None, Failure | None]:
    """Restate's ``{"Success": bytes}``, ``{"Failure": {code, message}}``, ``"Void"``,
    or another variant (``{"StateKeys": [...]}``, ``{"InvocationId": ...}``)."""
    if result is None or result == "Void":
        return None, None
    if isinstance(result, dict):
        if "Success" in result:
            return _text(result["Success"]), None
        if "Failure" in result:
            f = result["Failure"] or {}
            return None, Failure(int(f.get("code", 500)), str(f.get("message", "")))
        if "StateKeys" in result:
            return json.dumps(sorted(result["StateKeys"] or [])), None
        if len(result) == 1:
            return json.dumps(next(iter(result.values()))), None
    return json.dumps(result), None


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.astimezone(UTC).replace(tzinfo=None)  # the store's naive UTC


def _target(t: Any) -> tuple[str, str, str | None]:
    """``{"Service": {"name", "handler"}}`` / ``{"VirtualObject": {..., "key"}}``..."""
    if isinstance(t, dict) and len(t) == 1:
        inner = next(iter(t.values())) or {}
        return str(inner.get("name", "")), str(inner.get("handler", "")), inner.get("key")
    return "", "", None


def _headers(items: Any) -> dict[str, str]:
    if isinstance(items, dict):
        return {str(k): str(v) for k, v in items.items()}
    return {str(h.get("name")): str(h.get("value")) for h in items or [] if isinstance(h, dict)}


def _name(value: Any) -> str | None:
    return value or None


def _ms(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.replace(tzinfo=UTC).timestamp() * 1000)


# ---------------------------------------------------------------------------- parsing
@dataclass(slots=True)
class _Row:
    index: int
    entry_type: str
    body: dict[str, Any]
    at: datetime | None


def _rows(rows: list[dict[str, Any]]) -> list[_Row]:
    out = []
    for r in sorted(rows, key=lambda r: int(r["index"])):
        try:
            value = json.loads(r.get("entry_json") or "")
        except ValueError:
            raise UnknownEntry(
                f"journal row {r.get('index')} has no readable entry_json "
                f"({r.get('entry_type')!r}): is this Restate 1.7 or newer?"
            ) from None
        out.append(
            _Row(
                int(r["index"]), str(r.get("entry_type") or ""), value, _time(r.get("appended_at"))
            )
        )
    return out


def _one(d: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(d, dict) and len(d) == 1:
        k, v = next(iter(d.items()))
        return k, v if isinstance(v, dict) else {"value": v}
    if isinstance(d, str):
        return d, {}
    raise UnknownEntry(f"unexpected journal entry shape: {str(d)[:120]}")


@dataclass(slots=True)
class _Open:
    """A command being built: its durable fields and the completion ids it waits for."""

    kind: EntryKind
    name: str | None
    payload: Payload | None
    row: _Row
    result: str | None = None
    failure: Failure | None = None
    completed: bool = False
    completed_at: datetime | None = None
    waits: tuple[int, ...] = ()  # completion ids whose notification completes it
    result_id: int | None = None  # the completion id that carries the result
    mentions: str = ""  # text in which an awakeable id may appear
    awakeable: str | None = None  # for awakeable entries: the id
    signal: int | None = None
    placed_at: datetime | None = None  # an awakeable: when the command after it was made
    done_row: int | None = None  # the row that completed it (a notification, or its own)

    def text(self) -> str:
        """What the command carries that may hold an awakeable's id."""
        return self.mentions + (self.result or "")


def _local(
    kind: EntryKind,
    name: str | None,
    payload: Payload | None,
    row: _Row,
    result: str | None = None,
    failure: Failure | None = None,
    mentions: str = "",
) -> _Open:
    """A command complete when recorded (state, sends, outputs)."""
    return _Open(kind, name, payload, row, result, failure, True, row.at, mentions=mentions)


def _remote(
    kind: EntryKind,
    name: str | None,
    payload: Payload | None,
    row: _Row,
    c: dict[str, Any],
    field: str = "completion_id",
    mentions: str = "",
) -> _Open:
    """A command that a notification completes (the one carrying ``c[field]``)."""
    cid = _int(c.get(field))
    waits = tuple(i for i in (cid, _int(c.get("invocation_id_completion_id"))) if i is not None)
    return _Open(kind, name, payload, row, waits=waits, result_id=cid, mentions=mentions)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


_PROMISES = {
    "GetPromise": EntryKind.GET_PROMISE,
    "PeekPromise": EntryKind.PEEK_PROMISE,
    "CompletePromise": EntryKind.COMPLETE_PROMISE,
}


def _call(kind_name: str, c: dict[str, Any], row: _Row) -> _Open:
    req = c.get("request") or {}
    service, handler, key = _target(req.get("invocation_target"))
    call = CallPayload(
        service=service,
        handler=handler,
        key=key,
        input=_text(req.get("parameter")),
        headers=_headers(req.get("headers")),
        idempotency_key=req.get("idempotency_key"),
        invocation_id=str(req.get("invocation_id") or ""),
    )
    name, mentions = f"{service}/{handler}", call.input or ""
    if kind_name == "Call":
        return _remote(EntryKind.CALL, name, call, row, c, "result_completion_id", mentions)
    at = _int(c.get("invoke_time")) or 0
    start = _ms(row.at)
    delay = max(0, at - start) if at and start is not None else 0
    fields = {f.name: getattr(call, f.name) for f in dataclasses.fields(call)}
    send = SendPayload(**fields, delay_ms=delay)
    target = json.dumps(call.invocation_id)
    return _local(EntryKind.ONE_WAY_CALL, name, send, row, target, mentions=mentions)


def _command(kind_name: str, c: dict[str, Any], row: _Row) -> _Open | None:
    name = _name(c.get("name"))
    key = str(c.get("key", ""))
    if kind_name == "Input":
        return None  # entry 0, made by the caller
    if kind_name == "Output":
        result, failure = _outcome(c.get("result"))
        return _local(EntryKind.OUTPUT, None, None, row, result, failure)
    if kind_name == "Run":
        return _remote(EntryKind.RUN, name, None, row, c)
    if kind_name == "Sleep":
        wake = _int(c.get("wake_up_time"))
        start = _ms(row.at)
        duration = max(0, wake - start) if wake is not None and start is not None else 0
        return _remote(EntryKind.SLEEP, name, SleepPayload(duration, wake), row, c)
    if kind_name in ("Call", "OneWayCall"):
        return _call(kind_name, c, row)
    if kind_name == "GetLazyState":
        return _remote(EntryKind.GET_STATE, key, None, row, c)
    if kind_name == "GetEagerState":
        result, failure = _outcome(c.get("result"))
        return _local(EntryKind.GET_STATE, key, None, row, result, failure)
    if kind_name == "SetState":
        value = _text(c.get("value"))
        return _local(EntryKind.SET_STATE, key, SetStatePayload(value), row, mentions=value or "")
    if kind_name == "ClearState":
        return _local(EntryKind.CLEAR_STATE, key, None, row)
    if kind_name == "ClearAllState":
        return _local(EntryKind.CLEAR_ALL_STATE, None, None, row)
    if kind_name == "GetEagerStateKeys":
        keys = json.dumps(sorted(c.get("state_keys") or []))
        return _local(EntryKind.STATE_KEYS, None, None, row, keys)
    if kind_name == "GetLazyStateKeys":
        return _remote(EntryKind.STATE_KEYS, None, None, row, c)
    if kind_name in _PROMISES:
        payload: Payload | None = None
        if kind_name == "CompletePromise":
            payload = CompletePromisePayload(*_outcome(c.get("value")))
        return _remote(_PROMISES[kind_name], key, payload, row, c)
    if kind_name == "CompleteAwakeable":
        awk = str(c.get("id", ""))
        payload = CompleteAwakeablePayload(awk, *_outcome(c.get("result")))
        return _local(EntryKind.COMPLETE_AWAKEABLE, awk, payload, row, mentions=awk)
    if kind_name == "SendSignal":
        target = str(c.get("target_invocation_id", ""))
        kind_id, sig = _one(c.get("signal_id") or {})
        index = _int(sig.get("value"))
        if kind_id == "Index" and index == CANCEL_SIGNAL:
            return _local(EntryKind.CANCEL_INVOCATION, target, CancelPayload(target), row)
        awk = (
            awakeable_id(target, index)
            if kind_id == "Index" and index is not None
            else f"signal:{target}:{sig.get('value')}"
        )
        payload = CompleteAwakeablePayload(awk, *_outcome(c.get("result")))
        return _local(EntryKind.COMPLETE_AWAKEABLE, awk, payload, row, mentions=awk)
    if kind_name in ("AttachInvocation", "GetInvocationOutput"):
        t = c.get("target") or {}
        inv = str(t.get("InvocationId", "")) if isinstance(t, dict) else str(t)
        return _remote(EntryKind.ATTACH_INVOCATION, inv, AttachPayload(inv), row, c)
    raise UnknownEntry(f"Restate journal command {kind_name!r} has no durable entry kind")


def map_journal(rows: list[dict[str, Any]], invocation_id: str | None = None) -> list[MappedEntry]:
    """Restate's journal rows of one invocation as durable entries, in order.

    ``invocation_id`` names the awakeables that are still pending (with
    ``pending_signals``, see :func:`entry_views`); without it they keep a placeholder id.
    Raises :class:`UnknownEntry` for a row this mapping does not know.
    """
    return _map(rows, invocation_id, ())


def _map(
    rows: list[dict[str, Any]], invocation_id: str | None, pending_signals: tuple[int, ...]
) -> list[MappedEntry]:
    parsed = _rows(rows)
    items: list[_Open] = []
    by_completion: dict[int, _Open] = {}
    signals: list[_Open] = []
    input_row: _Row | None = None
    for row in parsed:
        top, inner = _one(row.body)
        if top == "Command":
            kind_name, c = _one(inner)
            if kind_name == "Input":
                input_row = row
                continue
            item = _command(kind_name, c, row)
            if item is None:
                continue
            items.append(item)
            for wait in item.waits:
                by_completion[wait] = item
        elif top == "Notification":
            ntype, n = _one(inner)
            if ntype == "Completion":
                _what, body = _one(n)
                cid = _int(body.get("completion_id"))
                owner = by_completion.get(cid) if cid is not None else None
                if owner is None or cid != owner.result_id:
                    continue  # e.g. a call's invocation id: already in the command
                owner.result, owner.failure = _outcome(body.get("result"))
                owner.completed, owner.completed_at, owner.done_row = True, row.at, row.index
            elif ntype == "Signal":
                kind_id, sig = _one(n.get("id") or {})
                index = _int(sig.get("value"))
                if kind_id in ("Index", "SignalIndex") and index == CANCEL_SIGNAL:
                    continue  # the cancel signal: the invocation's end says it
                awk = (
                    awakeable_id(invocation_id, index)
                    if invocation_id and index is not None and kind_id in ("Index", "SignalIndex")
                    else f"signal:{sig.get('value')}"
                )
                result, failure = _outcome(n.get("result"))
                signals.append(
                    _Open(
                        EntryKind.AWAKEABLE, None, AwakeablePayload(awk), row, result, failure,
                        True, row.at, awakeable=awk, signal=index,
                    )
                )  # fmt: skip
            else:
                raise UnknownEntry(f"Restate journal notification {ntype!r} is not known")
        else:
            raise UnknownEntry(
                f"Restate journal row {row.index} is neither command nor notification"
            )
    if invocation_id:  # awakeables whose ids the code handed on, not completed yet
        pending_signals = (*pending_signals, *_own_signals(items, invocation_id))
    for index in dict.fromkeys(pending_signals):
        if invocation_id and index >= FIRST_AWAKEABLE_SIGNAL:
            awk = awakeable_id(invocation_id, index)
            if not any(s.awakeable == awk for s in signals):
                fake = _Row(parsed[-1].index + 1 if parsed else 1, "", {}, None)
                signals.append(
                    _Open(
                        EntryKind.AWAKEABLE,
                        None,
                        AwakeablePayload(awk),
                        fake,
                        awakeable=awk,
                        signal=index,
                    )
                )
    items = _place_awakeables(items, signals)
    _order_completions(items)
    out = [
        MappedEntry(
            JournalEntry(0, EntryKind.INPUT, None, request_of(rows)[0], None, None, True),
            input_row.index if input_row else 0,
            input_row.entry_type if input_row else "Command: Input",
            input_row.at if input_row else None,
            input_row.at if input_row else None,
        )
    ]
    for pos, it in enumerate(items, start=1):
        payload = it.payload.to_json() if it.payload is not None else None
        if it.awakeable is not None:  # its place is a guess: a replay may move it earlier
            payload = json.dumps({"id": it.awakeable, "guessed": True})
        entry = JournalEntry(pos, it.kind, it.name, payload, it.result, it.failure, it.completed)
        out.append(
            MappedEntry(
                entry,
                None if it.awakeable is not None else it.row.index,
                "Notification: Signal" if it.awakeable is not None else it.row.entry_type,
                it.placed_at or it.row.at,
                it.completed_at if it.completed else None,
            )
        )
    return out


def _order_completions(items: list[_Open]) -> None:
    """Completion times strictly increasing in the order Restate appended the rows that
    completed them (its times are in milliseconds): a replay's combinator picks by them."""
    last: datetime | None = None
    done = [it for it in items if it.completed and it.completed_at is not None]
    for it in sorted(done, key=lambda it: it.done_row if it.done_row is not None else it.row.index):
        assert it.completed_at is not None
        if last is not None and it.completed_at <= last:
            it.completed_at = last + timedelta(microseconds=1)
        last = it.completed_at


_AWAKEABLE_ID = re.compile(r"sign_1[A-Za-z0-9_-]{38}")


def _own_signals(items: list[_Open], invocation_id: str) -> list[int]:
    """Signal indexes of this invocation's awakeables named in its commands (an id it
    made and handed on: Restate journals no command for making one)."""
    own = invocation_id_bytes(invocation_id)
    found = []
    for it in items:
        for awk in _AWAKEABLE_ID.findall(it.text()):
            try:
                raw = base64.urlsafe_b64decode(awk[6:] + "==")
            except ValueError:
                continue
            if len(raw) == 28 and raw[:24] == own:
                found.append(int.from_bytes(raw[24:], "big"))
    return found


def _place_awakeables(items: list[_Open], signals: list[_Open]) -> list[_Open]:
    """Each awakeable before the first command that mentions its id, else where its
    signal arrived (by row order), else at the end."""
    out = list(items)
    for s in sorted(signals, key=lambda s: s.signal or 0):
        assert s.awakeable is not None
        at = next((i for i, it in enumerate(out) if s.awakeable in it.text()), None)
        if at is None:
            at = next((i for i, it in enumerate(out) if it.row.index > s.row.index), len(out))
        if at < len(out):
            s.placed_at = out[at].row.at
        out.insert(at, s)
    return out


def journal_entries(
    rows: list[dict[str, Any]], invocation_id: str | None = None
) -> list[JournalEntry]:
    """The durable journal a replay consumes (entry 0 the input; the output last, when
    the invocation ended)."""
    return [m.entry for m in map_journal(rows, invocation_id)]


def request_of(rows: list[dict[str, Any]]) -> tuple[str | None, dict[str, str]]:
    """The input command's body (JSON text, ``None`` when empty) and headers."""
    for r in rows:
        if str(r.get("entry_type")) == "Command: Input" or int(r.get("index", -1)) == 0:
            try:
                body = json.loads(r.get("entry_json") or "{}")
            except ValueError:
                break
            c = (body.get("Command") or {}).get("Input") or {}
            return _text(c.get("payload")), _headers(c.get("headers"))
    return None, {}


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat() + "Z"


def _parse(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def entry_views(
    rows: list[dict[str, Any]],
    invocation_id: str | None = None,
    pending_signals: tuple[int, ...] = (),
) -> list[dict[str, Any]]:
    """Each entry as ``GET /api/invocations/{id}`` shows it (the keys durable's admin API
    gives: index, kind, name, payload, result, failure, completed, times, child_id),
    plus ``restate_index`` and ``restate_type``. ``pending_signals`` (from
    ``sys_invocation.suspended_waiting_for_signals``) adds the awakeables it waits on."""
    out = []
    for m in _map(rows, invocation_id, pending_signals):
        e = m.entry
        payload = _parse(e.payload)
        if e.kind is EntryKind.SLEEP and isinstance(payload, dict) and payload.get("wake_at"):
            wake = datetime.fromtimestamp(payload["wake_at"] / 1000, UTC)
            payload["wake_at"] = _iso(wake.replace(tzinfo=None))
        child = None
        if e.kind in (EntryKind.CALL, EntryKind.ONE_WAY_CALL) and isinstance(payload, dict):
            child = payload.get("invocation_id") or None
        started = m.created_at
        ended = m.completed_at if e.completed else None
        if e.kind is EntryKind.ONE_WAY_CALL or ended is None and e.completed:
            ended = started
        out.append(
            {
                "index": e.index,
                "kind": e.kind.value,
                "name": e.name,
                "payload": payload,
                "result": _parse(e.result),
                "failure": (
                    {"code": e.failure.code, "message": e.failure.message} if e.failure else None
                ),
                "completed": e.completed,
                "created_at": _iso(m.created_at),
                "completed_at": _iso(m.completed_at),
                "duration_ms": (
                    round((ended - started).total_seconds() * 1000, 3)
                    if started is not None and ended is not None and ended > started
                    else None
                ),
                "started_at": _iso(started),
                "ended_at": _iso(ended),
                "planned_end": None,
                "child_id": child,
                "restate_index": m.restate_index,
                "restate_type": m.restate_type,
            }
        )
    return out
