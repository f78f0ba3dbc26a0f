"""The invocation lifecycle as a state machine that does no I/O.

``apply(row, event, now)`` returns the new row and the actions the engine must carry
out. Time comes in as ``now``; retry policies come in with the events. The engine owns
every effect (writes, dispatch, timers); this module only decides.

Statuses (shown the same way everywhere)::

    pending ─┐   scheduled ─┐
             ▼              ▼
           ready ──▶ running ──▶ completed | cancelled
             ▲        │  │  └──▶ suspended ──(completion)──▶ ready
             │        │  └──▶ backing-off ──(retry due)──▶ ready
             │        └──▶ paused ──(resume)──▶ ready
    any non-terminal ──(kill)──▶ killed
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from durable.definitions import RetryPolicy
from durable.messages import Failure

from .store.ops import InvocationRow, changed_row

__all__ = [
    "Status",
    "TERMINAL",
    "ACTIONS",
    "allowed_actions",
    "refusal",
    "Event",
    "Submitted",
    "DelayElapsed",
    "KeyAcquired",
    "Dispatched",
    "Suspended",
    "Woken",
    "AttemptFailed",
    "RetryDue",
    "Finished",
    "Kill",
    "Pause",
    "Resume",
    "CancelRequested",
    "Action",
    "Dispatch",
    "ScheduleRetry",
    "ScheduleStart",
    "Respond",
    "AbortAttempt",
    "DeliverCancel",
    "ReleaseKey",
    "IllegalTransition",
    "apply",
]


class Status(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    READY = "ready"
    RUNNING = "running"
    SUSPENDED = "suspended"
    BACKING_OFF = "backing-off"
    PAUSED = "paused"
    COMPLETED = "completed"
    KILLED = "killed"
    CANCELLED = "cancelled"


#: the statuses an invocation ends in (``"completed" in TERMINAL`` holds: a StrEnum)
TERMINAL = frozenset({Status.COMPLETED, Status.KILLED, Status.CANCELLED})

#: the actions a person can take on an invocation
ACTIONS = ("cancel", "kill", "purge", "pause", "resume")

_UNFINISHED = ("cancel", "kill")
#: which actions each status allows, in the order to offer them
_ALLOWED: dict[Status, tuple[str, ...]] = {
    Status.PENDING: _UNFINISHED,
    Status.SCHEDULED: _UNFINISHED,
    Status.READY: ("pause", *_UNFINISHED),
    Status.RUNNING: ("pause", *_UNFINISHED),
    Status.SUSPENDED: ("pause", *_UNFINISHED),
    Status.BACKING_OFF: ("pause", "resume", *_UNFINISHED),
    Status.PAUSED: ("resume", *_UNFINISHED),
    **{s: ("purge",) for s in TERMINAL},
}


def allowed_actions(status: str) -> list[str]:
    """The actions an invocation in ``status`` allows (what the UIs offer)."""
    return list(_ALLOWED.get(Status(status), ()))


def refusal(action: str, status: str, inv_id: str) -> str | None:
    """Why ``action`` cannot be done to an invocation in ``status`` and what to do
    instead; None when it can. Pausing a paused invocation is accepted (it changes
    nothing) though it is not offered."""
    if action in _ALLOWED.get(Status(status), ()) or (action == "pause" and status == "paused"):
        return None
    head = f"invocation {inv_id} is {status}"
    if action == "purge":
        return f"{head}: only finished invocations can be purged; cancel or kill it first"
    if status in TERMINAL:
        return f"{head}: there is nothing to {action}"
    if action == "resume":
        return f"{head}: only paused or backing-off invocations can be resumed"
    if action == "pause":
        return (
            f"{head}: it has not started, so there is nothing to pause; cancel or kill it instead"
        )
    return f"{head}: {action} is not possible now"


class IllegalTransition(Exception):
    """An event that the invocation's status does not allow (for example, resume of a
    completed invocation)."""


# -- events
@dataclass(frozen=True)
class Submitted:
    key_busy: bool = False
    delay_until: datetime | None = None


@dataclass(frozen=True)
class DelayElapsed:
    key_busy: bool = False


@dataclass(frozen=True)
class KeyAcquired:
    pass


@dataclass(frozen=True)
class Dispatched:
    pass


@dataclass(frozen=True)
class Suspended:
    waiting_on: tuple[int, ...]


@dataclass(frozen=True)
class Woken:
    pass


@dataclass(frozen=True)
class AttemptFailed:
    error: str
    stack: str
    policy: RetryPolicy
    nondeterminism: bool = False
    pause: bool = False
    retry_after: timedelta | None = None  # instead of the policy's delay (RetryableError)


@dataclass(frozen=True)
class RetryDue:
    pass


@dataclass(frozen=True)
class Finished:
    output: str | None
    failure: Failure | None
    journal_length: int


@dataclass(frozen=True)
class Kill:
    pass


@dataclass(frozen=True)
class Pause:
    reason: str = "paused by hand"


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class CancelRequested:
    pass


Event = (
    Submitted
    | DelayElapsed
    | KeyAcquired
    | Dispatched
    | Suspended
    | Woken
    | AttemptFailed
    | RetryDue
    | Finished
    | Kill
    | Pause
    | Resume
    | CancelRequested
)


# -- actions
@dataclass(frozen=True)
class Dispatch:
    """Send the invocation to a worker (replaying its journal)."""


@dataclass(frozen=True)
class ScheduleRetry:
    at: datetime


@dataclass(frozen=True)
class ScheduleStart:
    at: datetime


@dataclass(frozen=True)
class Respond:
    """The invocation ended: answer waiting callers, the parent and attached ones."""


@dataclass(frozen=True)
class AbortAttempt:
    """Stop the attempt running in the worker."""


@dataclass(frozen=True)
class DeliverCancel:
    """Fail the invocation's pending awaits with a cancellation (it may compensate)."""


@dataclass(frozen=True)
class ReleaseKey:
    """Let the next invocation queued on the same object key run."""


Action = (
    Dispatch | ScheduleRetry | ScheduleStart | Respond | AbortAttempt | DeliverCancel | ReleaseKey
)


def _set(row: InvocationRow, now: datetime, **changes: object) -> InvocationRow:
    return changed_row(row, modified_at=now, **changes)


def apply(row: InvocationRow, event: Event, now: datetime) -> tuple[InvocationRow, list[Action]]:
    """The next row and the actions for ``event``; raises IllegalTransition."""
    st = Status(row.status)
    if st in TERMINAL:
        raise IllegalTransition(
            f"invocation {row.id} is {st.value}; it cannot take {type(event).__name__}"
        )

    if isinstance(event, Submitted):
        if event.delay_until is not None and event.delay_until > now:
            return _set(row, now, status=Status.SCHEDULED.value, scheduled_at=event.delay_until), [
                ScheduleStart(event.delay_until)
            ]
        if event.key_busy:
            return _set(row, now, status=Status.PENDING.value), []
        return _set(row, now, status=Status.READY.value), [Dispatch()]

    if isinstance(event, DelayElapsed):
        _expect(row, st, event, Status.SCHEDULED)
        if event.key_busy:
            return _set(row, now, status=Status.PENDING.value), []
        return _set(row, now, status=Status.READY.value), [Dispatch()]

    if isinstance(event, KeyAcquired):
        _expect(row, st, event, Status.PENDING)
        return _set(row, now, status=Status.READY.value), [Dispatch()]

    if isinstance(event, Dispatched):
        _expect(row, st, event, Status.READY)
        return _set(row, now, status=Status.RUNNING.value, waiting_on=None), []

    if isinstance(event, Suspended):
        _expect(row, st, event, Status.RUNNING)
        return _set(
            row, now, status=Status.SUSPENDED.value, waiting_on=json.dumps(list(event.waiting_on))
        ), []

    if isinstance(event, Woken):
        _expect(row, st, event, Status.SUSPENDED)
        return _set(row, now, status=Status.READY.value, waiting_on=None), [Dispatch()]

    if isinstance(event, AttemptFailed):
        _expect(row, st, event, Status.RUNNING)
        common = {"last_error": event.error, "last_error_stack": event.stack}
        if event.nondeterminism or event.pause:
            return _set(row, now, status=Status.PAUSED.value, next_retry_at=None, **common), []
        max_attempts = event.policy.max_attempts
        if max_attempts is not None and row.attempt >= max_attempts:
            return _set(row, now, status=Status.PAUSED.value, next_retry_at=None, **common), []
        delay = event.retry_after
        at = now + (delay if delay is not None else event.policy.delay(row.attempt))
        return _set(
            row,
            now,
            status=Status.BACKING_OFF.value,
            attempt=row.attempt + 1,
            next_retry_at=at,
            **common,
        ), [ScheduleRetry(at)]

    if isinstance(event, RetryDue):
        if st is not Status.BACKING_OFF:
            return row, []  # a stale timer: the invocation moved on (resumed by hand, killed)
        return _set(row, now, status=Status.READY.value, next_retry_at=None), [Dispatch()]

    if isinstance(event, Finished):
        _expect(row, st, event, Status.RUNNING)
        f = event.failure
        cancelled = f is not None and row.cancel_requested and f.code == 409
        status = Status.CANCELLED if cancelled else Status.COMPLETED
        return _set(
            row,
            now,
            status=status.value,
            output=event.output,
            failure_code=f.code if f else None,
            failure_message=f.message if f else None,
            completed_at=now,
            waiting_on=None,
            next_retry_at=None,
            journal_length=event.journal_length,
        ), [Respond(), ReleaseKey()]

    if isinstance(event, Kill):
        actions: list[Action] = [Respond(), ReleaseKey()]
        if st is Status.RUNNING:
            actions.insert(0, AbortAttempt())
        return _set(
            row,
            now,
            status=Status.KILLED.value,
            completed_at=now,
            failure_code=409,
            failure_message="killed",
            waiting_on=None,
            next_retry_at=None,
        ), actions

    if isinstance(event, Pause):
        if st is Status.PAUSED:
            return row, []
        actions = [AbortAttempt()] if st is Status.RUNNING else []
        if st in (Status.PENDING, Status.SCHEDULED):
            raise IllegalTransition(
                f"invocation {row.id} is {st.value}: it has not started, so "
                "there is nothing to pause; cancel or kill it instead"
            )
        return _set(
            row,
            now,
            status=Status.PAUSED.value,
            next_retry_at=None,
            last_error=row.last_error or event.reason,
        ), actions

    if isinstance(event, Resume):
        if st not in (Status.PAUSED, Status.BACKING_OFF):
            raise IllegalTransition(
                f"invocation {row.id} is {st.value}; only paused or "
                "backing-off invocations can be resumed"
            )
        return _set(
            row,
            now,
            status=Status.READY.value,
            next_retry_at=None,
            attempt=row.attempt + (1 if st is Status.PAUSED else 0),
        ), [Dispatch()]

    if isinstance(event, CancelRequested):
        if row.cancel_requested:
            return row, []
        if st in (Status.PENDING, Status.SCHEDULED, Status.READY):
            return _set(
                row,
                now,
                status=Status.CANCELLED.value,
                cancel_requested=True,
                completed_at=now,
                failure_code=409,
                failure_message="cancelled",
            ), [Respond(), ReleaseKey()]
        return _set(row, now, cancel_requested=True), [DeliverCancel()]

    raise IllegalTransition(f"unknown event {event!r}")


def _expect(row: InvocationRow, st: Status, event: Event, *allowed: Status) -> None:
    if st not in allowed:
        raise IllegalTransition(
            f"invocation {row.id} is {st.value}; {type(event).__name__} needs "
            + " or ".join(a.value for a in allowed)
        )
