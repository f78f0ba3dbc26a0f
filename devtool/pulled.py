"""A copy of an invocation pulled from a Restate cluster, and how it enters the store.

``durable pull`` (:mod:`durable.devtool.commands.pull`) reads an invocation from a cluster
(:mod:`durable.devtool.pull`) into a :class:`PulledCopy`, then hands it to
:func:`save_copy`: on the store it opens itself, or, when a runtime holds the store, on
that runtime's (``POST /api/invocations/import``: the copy's :meth:`PulledCopy.to_json`).

The copy is a finished, read-only invocation: its status is terminal (an invocation not
finished on the cluster is stored ``killed``, its remote status kept in ``origins``), so
the engine never runs it; ``replay`` and ``restart --from N`` read it like any other.
Its id is derived from Restate's (whose ids durable's check refuses): the creation time's
milliseconds, then 80 bits of a hash of the remote id, so copies sort by creation and a
second pull of the same invocation finds the first. The state of its key on the cluster
goes to ``origins.state``, never into the local state (see :mod:`durable.devtool.admin.actions`,
``restart``, for when it is used).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from durable.messages import EntryKind, Failure, JournalEntry

from .errors import BadRequest, Conflict
from .store import queries
from .store.ops import (
    TERMINAL_STATUSES,
    AppendEntry,
    CompleteEntry,
    InvocationRow,
    Op,
    PurgeInvocation,
    PutInvocation,
    PutOrigin,
)

if TYPE_CHECKING:
    from .store import Store

__all__ = ["PulledEntry", "PulledCopy", "local_id", "save_copy"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # as durable.ids


def local_id(remote_id: str, created_at: datetime) -> str:
    """The local id of the copy of ``remote_id``: ``inv_`` + 26 base32 characters, 48 bits
    of the creation time's milliseconds then 80 bits of a SHA-256 of the remote id."""
    ms = int((created_at - datetime(1970, 1, 1)).total_seconds() * 1000) & ((1 << 48) - 1)
    digest = hashlib.sha256(remote_id.encode()).digest()
    n = (ms << 80) | int.from_bytes(digest[:10], "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[n & 31])
        n >>= 5
    return "inv_" + "".join(reversed(chars))


@dataclass(frozen=True)
class PulledEntry:
    """One journal entry of the copy, with when the cluster recorded and completed it."""

    entry: JournalEntry
    created_at: datetime
    completed_at: datetime | None = None


@dataclass(frozen=True)
class PulledCopy:
    """An invocation as read from a cluster: its row's facts, journal and key state."""

    cluster: str  # the admin URL
    remote_id: str
    remote_status: str  # as Restate says it (completed, backing-off, suspended...)
    status: str  # the local copy's terminal status
    service: str
    handler: str
    key: str | None
    service_kind: str  # service | object | workflow
    handler_kind: str  # service | exclusive | shared | workflow
    headers: dict[str, str]
    idempotency_key: str | None
    output: str | None
    failure: Failure | None
    last_error: str | None
    created_at: datetime
    modified_at: datetime
    completed_at: datetime | None
    entries: tuple[PulledEntry, ...]
    state: dict[str, str] | None  # the key's state on the cluster: name -> JSON text
    pulled_at: datetime

    @property
    def id(self) -> str:
        return local_id(self.remote_id, self.created_at)

    @property
    def input(self) -> str | None:
        first = self.entries[0].entry if self.entries else None
        return first.payload if first is not None and first.kind is EntryKind.INPUT else None

    def row(self) -> InvocationRow:
        """The local row: terminal, so the engine never runs it."""
        return InvocationRow(
            id=self.id,
            service=self.service,
            handler=self.handler,
            key=self.key,
            service_kind=self.service_kind,
            handler_kind=self.handler_kind,
            status=self.status,
            input=self.input,
            headers=json.dumps(self.headers),
            idempotency_key=self.idempotency_key,
            output=self.output,
            failure_code=self.failure.code if self.failure else None,
            failure_message=self.failure.message if self.failure else None,
            attempt=1,
            next_retry_at=None,
            last_error=self.last_error,
            last_error_stack=None,
            waiting_on=None,
            parent_id=None,
            parent_entry=None,
            restarted_from=None,
            scheduled_at=None,
            cancel_requested=False,
            journal_length=len(self.entries),
            created_at=self.created_at,
            modified_at=self.modified_at,
            completed_at=self.completed_at or self.modified_at,
        )

    def ops(self) -> list[Op]:
        """Everything the store writes for the copy, in one group."""
        inv_id = self.id
        ops: list[Op] = [PutInvocation(self.row(), new=True)]
        for p in self.entries:
            ops.append(AppendEntry(inv_id, p.entry, p.created_at))
            if p.entry.completed and p.completed_at is not None:
                e = p.entry
                ops.append(CompleteEntry(inv_id, e.index, e.result, e.failure, p.completed_at))
        state = json.dumps(self.state) if self.state is not None else None
        ops.append(
            PutOrigin(
                inv_id, self.cluster, self.remote_id, self.remote_status, self.pulled_at, state
            )
        )
        return ops

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        """The copy as the import endpoint's body."""

        def t(dt: datetime | None) -> str | None:
            return dt.isoformat() if dt is not None else None

        return {
            "cluster": self.cluster,
            "remote_id": self.remote_id,
            "remote_status": self.remote_status,
            "status": self.status,
            "service": self.service,
            "handler": self.handler,
            "key": self.key,
            "service_kind": self.service_kind,
            "handler_kind": self.handler_kind,
            "headers": self.headers,
            "idempotency_key": self.idempotency_key,
            "output": self.output,
            "failure": _failure_json(self.failure),
            "last_error": self.last_error,
            "created_at": t(self.created_at),
            "modified_at": t(self.modified_at),
            "completed_at": t(self.completed_at),
            "entries": [
                {
                    "index": p.entry.index,
                    "kind": p.entry.kind.value,
                    "name": p.entry.name,
                    "payload": p.entry.payload,
                    "result": p.entry.result,
                    "failure": _failure_json(p.entry.failure),
                    "completed": p.entry.completed,
                    "created_at": t(p.created_at),
                    "completed_at": t(p.completed_at),
                }
                for p in self.entries
            ],
            "state": self.state,
            "pulled_at": t(self.pulled_at),
        }

    @classmethod
    def from_json(cls, d: Any) -> PulledCopy:
        """A copy from :meth:`to_json`'s shape; BadRequest naming the first bad field."""
        if not isinstance(d, dict):
            raise BadRequest("the body must be a JSON object: a pulled copy (durable pull)")
        try:
            entries = tuple(
                PulledEntry(
                    JournalEntry(
                        _int(e, "index"),
                        EntryKind(e["kind"]),
                        _opt_str(e, "name"),
                        _opt_str(e, "payload"),
                        _opt_str(e, "result"),
                        _failure(e.get("failure")),
                        bool(e.get("completed")),
                    ),
                    _time(e["created_at"]),
                    _time(e["completed_at"]) if e.get("completed_at") else None,
                )
                for e in d["entries"]
            )
            state = d.get("state")
            if state is not None and not (
                isinstance(state, dict) and all(isinstance(v, str) for v in state.values())
            ):
                raise ValueError("state must be an object of JSON texts")
            copy = cls(
                cluster=_str(d, "cluster"),
                remote_id=_str(d, "remote_id"),
                remote_status=_str(d, "remote_status"),
                status=_str(d, "status"),
                service=_str(d, "service"),
                handler=_str(d, "handler"),
                key=_opt_str(d, "key"),
                service_kind=_str(d, "service_kind"),
                handler_kind=_str(d, "handler_kind"),
                headers={str(k): str(v) for k, v in (d.get("headers") or {}).items()},
                idempotency_key=_opt_str(d, "idempotency_key"),
                output=_opt_str(d, "output"),
                failure=_failure(d.get("failure")),
                last_error=_opt_str(d, "last_error"),
                created_at=_time(d["created_at"]),
                modified_at=_time(d["modified_at"]),
                completed_at=_time(d["completed_at"]) if d.get("completed_at") else None,
                entries=entries,
                state=state,
                pulled_at=_time(d["pulled_at"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
            raise BadRequest(f"not a pulled copy (durable pull makes them): {what}") from None
        if copy.status not in TERMINAL_STATUSES:
            raise BadRequest(
                f"a pulled copy's status must be one of {', '.join(TERMINAL_STATUSES)}, "
                f"not {copy.status!r}"
            )
        if [p.entry.index for p in entries] != list(range(len(entries))) or not entries:
            raise BadRequest("a pulled copy's entries must be numbered 0, 1, 2... (0: input)")
        return copy


def _failure_json(f: Failure | None) -> dict[str, Any] | None:
    return {"code": f.code, "message": f.message} if f is not None else None


def _failure(v: Any) -> Failure | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise ValueError("a failure must be an object {code, message}")
    return Failure(int(v["code"]), str(v["message"]))


def _str(d: dict[str, Any], name: str) -> str:
    v = d[name]
    if not isinstance(v, str) or not v:
        raise ValueError(f"{name} must be a non-empty string")
    return v


def _opt_str(d: dict[str, Any], name: str) -> str | None:
    v = d.get(name)
    if v is not None and not isinstance(v, str):
        raise ValueError(f"{name} must be a string or null")
    return v


def _int(d: dict[str, Any], name: str) -> int:
    v = d[name]
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{name} must be an integer")
    return v


def _time(v: Any) -> datetime:
    """An ISO time (``Z`` or an offset: made UTC) as the store keeps time: naive UTC."""
    dt = datetime.fromisoformat(v.replace("Z", "+00:00") if isinstance(v, str) else v)
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo is not None else dt


async def save_copy(store: Store, copy: PulledCopy, force: bool = False) -> dict[str, Any]:
    """Write ``copy`` into ``store``; a second pull of it is a Conflict unless ``force``
    (then the old copy is purged first). Returns what was written."""
    inv_id = copy.id
    existing = await store.read(queries.invocation, inv_id)
    replaced = False
    if existing is not None:
        origin = await store.read(queries.origin, inv_id)
        if origin is None:  # a 128-bit clash with a local invocation: never overwrite it
            raise Conflict(
                f"the local id {inv_id} of {copy.remote_id} is taken by a local invocation"
            )
        if not force:
            raise Conflict(
                f"{copy.remote_id} was already pulled from {origin['cluster']} at "
                f"{origin['pulled_at']:%Y-%m-%d %H:%M:%S} UTC, as {inv_id}: use --force to "
                "replace that copy"
            )
        await store.write([PurgeInvocation(inv_id)])
        replaced = True
    await store.write(copy.ops())
    return {
        "id": inv_id,
        "remote_id": copy.remote_id,
        "cluster": copy.cluster,
        "status": copy.status,
        "remote_status": copy.remote_status,
        "service": copy.service,
        "handler": copy.handler,
        "key": copy.key,
        "entries": len(copy.entries),
        "state_keys": sorted(copy.state or {}),
        "replaced": replaced,
    }
