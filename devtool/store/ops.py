"""Write operations: what the engine asks the store's writer to commit.

Every change to the store is one of these frozen dataclasses. The writer applies a
queue of them in one transaction (group commit), coalescing changes to the same row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from durable.messages import Failure, JournalEntry

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
    "Op",
    "INVOCATION_COLUMNS",
    "INVOCATION_MUTABLE",
]


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
INVOCATION_MUTABLE = [
    "status",
    "output",
    "failure_code",
    "failure_message",
    "attempt",
    "next_retry_at",
    "last_error",
    "last_error_stack",
    "waiting_on",
    "scheduled_at",
    "cancel_requested",
    "journal_length",
    "modified_at",
    "completed_at",
]


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
class PurgeInvocation:
    """Delete a completed invocation with its journal, timers and idempotency record."""

    invocation_id: str


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
)
