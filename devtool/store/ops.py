"""Write operations: what the engine asks the store's writer to commit.

Every change to the store is one of these frozen dataclasses. The writer applies a
queue of them in one transaction (group commit), coalescing changes to the same row.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from datetime import datetime

from durable.messages import Failure, JournalEntry, pickle_as_values

__all__ = [
    "InvocationRow",
    "PutInvocation",
    "AppendEntry",
    "CompleteEntry",
    "SetState",
    "ClearAllState",
    "PutTimer",
    "DeleteTimer",
    "PutAwakeable",
    "PutPromise",
    "PutIdempotency",
    "PurgeInvocation",
    "PurgeWorkflow",
    "PutAttempt",
    "AppendLogs",
    "LogRow",
    "PutOrigin",
    "Op",
    "INVOCATION_COLUMNS",
    "DB_COLUMNS",
    "row_to_db",
    "row_update_to_db",
    "row_from_db",
    "changed_row",
    "TERMINAL_STATUSES",
    "TERMINAL_SQL",
]

#: the statuses an invocation ends in (``lifecycle.TERMINAL`` is built from these)
TERMINAL_STATUSES = ("completed", "failed", "killed", "cancelled")
#: the same, as a SQL list for ``status IN (...)``
TERMINAL_SQL = ", ".join(f"'{s}'" for s in TERMINAL_STATUSES)


@dataclass(frozen=True, slots=True)
class InvocationRow:
    """One row of the ``invocations`` table."""

    id: str
    service: str
    handler: str
    key: str | None
    service_kind: str
    handler_kind: str
    status: str
    input: str | None
    headers: str | None
    idempotency_key: str | None
    output: str | None
    failure_code: int | None
    failure_message: str | None
    attempt: int
    next_retry_at: datetime | None
    last_error: str | None
    last_error_stack: str | None
    waiting_on: str | None
    parent_id: str | None
    parent_entry: int | None
    restarted_from: str | None
    scheduled_at: datetime | None
    cancel_requested: bool
    journal_length: int
    created_at: datetime
    modified_at: datetime
    completed_at: datetime | None


INVOCATION_COLUMNS = list(InvocationRow.__slots__)  # type: ignore[attr-defined]
_ROW_VALUES = operator.attrgetter(*INVOCATION_COLUMNS)
_ROW_SETTERS = [InvocationRow.__dict__[c].__set__ for c in INVOCATION_COLUMNS]
_ROW_SETTER = dict(zip(INVOCATION_COLUMNS, _ROW_SETTERS, strict=True))


def changed_row(row: InvocationRow, **changes: object) -> InvocationRow:
    """``dataclasses.replace`` for an InvocationRow, at half the cost (every status
    change makes one): fields are copied slot by slot, without ``__init__``."""
    new = object.__new__(InvocationRow)
    for put, value in zip(_ROW_SETTERS, _ROW_VALUES(row), strict=True):
        put(new, value)
    for name, value in changes.items():
        _ROW_SETTER[name](new, value)
    return new


#: Columns of the ``invocations`` table; every other field travels in its ``attrs`` JSON.
#: DuckDB's commit cost grows with the number of columns written (about 0.1 ms each),
#: so the hot table stays narrow. The ``invocation_details`` view spreads ``attrs`` out.
DB_COLUMNS = ["id", "service", "handler", "key", "status", "created_at", "modified_at", "attrs"]
_ATTRS = [c for c in INVOCATION_COLUMNS if c not in DB_COLUMNS]
_DT_ATTRS = {"next_retry_at", "scheduled_at", "completed_at"}


def _attrs_json(row: InvocationRow) -> str:
    d = {}
    for c in _ATTRS:
        v = getattr(row, c)
        if v is not None and c in _DT_ATTRS:
            v = v.isoformat()
        d[c] = v
    return json.dumps(d, separators=(",", ":"))


def row_to_db(row: InvocationRow) -> tuple:
    """The table row (DB_COLUMNS order) of an InvocationRow."""
    return (
        row.id,
        row.service,
        row.handler,
        row.key,
        row.status,
        row.created_at,
        row.modified_at,
        _attrs_json(row),
    )


def row_update_to_db(row: InvocationRow) -> tuple:
    """(id, status, modified_at, attrs): what a status change writes."""
    return (row.id, row.status, row.modified_at, _attrs_json(row))


def row_from_db(t: tuple) -> InvocationRow:
    """An InvocationRow from a table row in DB_COLUMNS order."""
    attrs = json.loads(t[7])
    for c in _DT_ATTRS:
        if attrs.get(c) is not None:
            attrs[c] = datetime.fromisoformat(attrs[c])
    return InvocationRow(
        id=t[0],
        service=t[1],
        handler=t[2],
        key=t[3],
        status=t[4],
        created_at=t[5],
        modified_at=t[6],
        **attrs,
    )


@dataclass(frozen=True, slots=True)
class PutInvocation:
    row: InvocationRow
    new: bool = False


@dataclass(frozen=True, slots=True)
class AppendEntry:
    invocation_id: str
    entry: JournalEntry
    at: datetime


@dataclass(frozen=True, slots=True)
class CompleteEntry:
    invocation_id: str
    index: int
    result: str | None
    failure: Failure | None
    at: datetime


@dataclass(frozen=True, slots=True)
class SetState:
    """Set (``value``) or clear (``value is None``) one state entry, with its history."""

    service: str
    key: str
    name: str
    value: str | None
    invocation_id: str | None
    index: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ClearAllState:
    service: str
    key: str
    invocation_id: str | None
    index: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class PutTimer:
    invocation_id: str
    index: int
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class DeleteTimer:
    invocation_id: str
    index: int


@dataclass(frozen=True, slots=True)
class PutAwakeable:
    id: str
    invocation_id: str
    index: int
    at: datetime


@dataclass(frozen=True, slots=True)
class PutPromise:
    service: str
    key: str
    name: str
    result: str | None
    failure: Failure | None
    at: datetime


@dataclass(frozen=True, slots=True)
class PutIdempotency:
    scope: str
    idempotency_key: str
    invocation_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PurgeWorkflow:
    """Forget one workflow id: its finished invocations (as PurgeInvocation does), its
    state and state history, and its promises; the id can then run again."""

    service: str
    key: str


@dataclass(frozen=True, slots=True)
class PurgeInvocation:
    """Delete a completed invocation with its journal, timers, idempotency record and
    origin (a pulled copy)."""

    invocation_id: str


@dataclass(frozen=True, slots=True)
class PutAttempt:
    """An attempt that ended in a failure (the ``attempts`` table)."""

    invocation_id: str
    attempt: int
    started_at: datetime
    ended_at: datetime
    error: str
    location: str | None
    stack: str | None
    outcome: str  # the status it led to: backing-off, paused or failed


#: one row of the ``logs`` table: (invocation id, logged_at, seq, attempt, stream, level, message)
LogRow = tuple[str, datetime, int, int | None, str, str | None, str]


@dataclass(frozen=True, slots=True)
class AppendLogs:
    """Lines handlers printed or logged (the ``logs`` table), in order."""

    rows: tuple[LogRow, ...]


@dataclass(frozen=True, slots=True)
class PutOrigin:
    """Where a pulled copy came from (the ``origins`` table); ``state`` is its key's
    state on the cluster (JSON object text), or None."""

    invocation_id: str
    cluster: str
    remote_id: str
    remote_status: str
    pulled_at: datetime
    state: str | None


Op = (
    PutInvocation
    | AppendEntry
    | CompleteEntry
    | SetState
    | ClearAllState
    | PutTimer
    | DeleteTimer
    | PutAwakeable
    | PutPromise
    | PutIdempotency
    | PurgeInvocation
    | PurgeWorkflow
    | PutAttempt
    | AppendLogs
    | PutOrigin
)


pickle_as_values(globals())
