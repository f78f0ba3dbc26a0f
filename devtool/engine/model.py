"""What the engine's modules share: an invocation held in memory, how one ended, the
worker link it talks to, and how a new invocation's row looks."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from durable.definitions import RetryPolicy
from durable.messages import EntryKind, Failure, JournalEntry

from ..lifecycle import Status
from ..store.ops import InvocationRow

__all__ = [
    "WorkerLink",
    "EngineConfig",
    "Outcome",
    "Active",
    "CANCELLED",
    "CANCELLABLE",
    "CALLS",
    "next_epoch",
    "object_key",
    "failure_of",
    "outcome_of",
    "new_row",
    "input_entry",
]


class WorkerLink(Protocol):
    """Where the engine sends Start/Ack/Completion/Abort messages."""

    name: str

    def send(self, msg: Any) -> None: ...


@dataclass
class EngineConfig:
    default_retry: RetryPolicy = field(default_factory=RetryPolicy)
    # suspended invocations whose row and journal stay in memory, most recent first, so
    # that a short wait (a timer of seconds) wakes without reading them back
    parked_limit: int = 256


@dataclass(frozen=True)
class Outcome:
    """How an invocation ended."""

    invocation_id: str
    status: str
    output: str | None
    failure: Failure | None


@dataclass(slots=True)
class Active:
    """An invocation the engine holds in memory (its row; its journal once read)."""

    row: InvocationRow
    journal: list[JournalEntry] | None = None
    epoch: int = 0
    link: WorkerLink | None = None
    order: list[int] = field(default_factory=list)  # completed entries, in completion order
    held: list[tuple[WorkerLink, Any]] | None = None  # worker messages held (see calls.dedupe)
    cancel_pending: bool = False  # cancelled while awaiting nothing: its next await fails
    started_at: datetime | None = None  # when the running attempt was dispatched


_epochs = itertools.count(1)


def next_epoch() -> int:
    """A number no attempt had before (the worker tags its messages with it)."""
    return next(_epochs)


CANCELLED = Failure(409, "cancelled")
#: entries a cancellation completes: the awaits that can last (the others finish at once)
CANCELLABLE = frozenset(
    {
        EntryKind.SLEEP,
        EntryKind.AWAKEABLE,
        EntryKind.CALL,
        EntryKind.GET_PROMISE,
        EntryKind.ATTACH_INVOCATION,
    }
)
CALLS = frozenset({EntryKind.CALL, EntryKind.ONE_WAY_CALL})


def object_key(row: InvocationRow) -> tuple[str, str] | None:
    """The key an exclusive handler of a virtual object holds while it runs."""
    if row.service_kind == "object" and row.handler_kind == "exclusive":
        return (row.service, row.key or "")
    return None


def failure_of(row: InvocationRow) -> Failure | None:
    if row.failure_code is None:
        return None
    return Failure(row.failure_code, row.failure_message or "")


def outcome_of(row: InvocationRow) -> Outcome:
    return Outcome(row.id, row.status, row.output, failure_of(row))


def input_entry(input_json: str | None) -> JournalEntry:
    """Entry 0 of every journal."""
    return JournalEntry(0, EntryKind.INPUT, None, input_json, None, None, True)


def new_row(
    inv_id: str,
    service_kind: str,
    handler_kind: str,
    service: str,
    handler: str,
    key: str | None,
    input_json: str,
    headers: dict[str, str] | None,
    idempotency_key: str | None,
    now: datetime,
    parent: tuple[str, int] | None = None,
    restarted_from: str | None = None,
) -> InvocationRow:
    """The row of an invocation about to be queued (ready; the lifecycle moves it on)."""
    return InvocationRow(
        id=inv_id,
        service=service,
        handler=handler,
        key=key,
        service_kind=service_kind,
        handler_kind=handler_kind,
        status=Status.READY.value,
        input=input_json,
        headers=json.dumps(headers or {}),
        idempotency_key=idempotency_key,
        output=None,
        failure_code=None,
        failure_message=None,
        attempt=1,
        next_retry_at=None,
        last_error=None,
        last_error_stack=None,
        waiting_on=None,
        parent_id=parent[0] if parent else None,
        parent_entry=parent[1] if parent else None,
        restarted_from=restarted_from,
        scheduled_at=None,
        cancel_requested=False,
        journal_length=1,
        created_at=now,
        modified_at=now,
        completed_at=None,
    )
