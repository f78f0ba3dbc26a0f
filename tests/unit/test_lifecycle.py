"""Unit tests of the invocation lifecycle state machine (durable.devtool.lifecycle).

``apply(row, event, now)`` does no I/O, so every transition is checked event by event:
the next row, the actions for the engine, and the events each status refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from durable.definitions import RetryPolicy
from durable.devtool.lifecycle import (
    TERMINAL,
    AbortAttempt,
    AttemptFailed,
    CancelRequested,
    DelayElapsed,
    DeliverCancel,
    Dispatch,
    Dispatched,
    Finished,
    IllegalTransition,
    KeyAcquired,
    Kill,
    Pause,
    ReleaseKey,
    Respond,
    Resume,
    RetryDue,
    ScheduleRetry,
    ScheduleStart,
    Status,
    Submitted,
    Suspended,
    Woken,
    apply,
)
from durable.devtool.store.ops import InvocationRow
from durable.messages import Failure

T0 = datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)
POLICY = RetryPolicy(
    initial_interval=timedelta(milliseconds=100),
    factor=2.0,
    max_interval=timedelta(seconds=1),
    max_attempts=4,
)

MakeRow = Callable[..., InvocationRow]


@pytest.fixture
def make_row() -> MakeRow:
    """An invocations row with every field set; keyword arguments override fields."""

    def make(**changes: Any) -> InvocationRow:
        if "status" in changes and isinstance(changes["status"], Status):
            changes["status"] = changes["status"].value
        base: dict[str, Any] = {
            "id": "inv_1lifecycle0000000000000001",
            "service": "Cart",
            "handler": "add",
            "key": "cart-1",
            "service_kind": "object",
            "handler_kind": "exclusive",
            "status": Status.READY.value,
            "input": '{"sku": "A"}',
            "headers": "{}",
            "idempotency_key": None,
            "output": None,
            "failure_code": None,
            "failure_message": None,
            "attempt": 1,
            "next_retry_at": None,
            "last_error": None,
            "last_error_stack": None,
            "waiting_on": None,
            "parent_id": None,
            "parent_entry": None,
            "restarted_from": None,
            "scheduled_at": None,
            "cancel_requested": False,
            "journal_length": 1,
            "created_at": T0,
            "modified_at": T0,
            "completed_at": None,
        }
        assert set(base) == {f.name for f in fields(InvocationRow)}, "factory out of date"
        base.update(changes)
        return InvocationRow(**base)

    return make


def failed(
    error: str = "ValueError: boom", nondeterminism: bool = False, policy: RetryPolicy = POLICY
) -> AttemptFailed:
    return AttemptFailed(error, "Traceback ...\nValueError: boom", policy, nondeterminism)


def status(row: InvocationRow) -> Status:
    return Status(row.status)


ALL_EVENTS: list[Any] = [
    Submitted(),
    DelayElapsed(),
    KeyAcquired(),
    Dispatched(),
    Suspended((1,)),
    Woken(),
    failed(),
    RetryDue(),
    Finished('"ok"', None, 3),
    Kill(),
    Pause(),
    Resume(),
    CancelRequested(),
]
NON_TERMINAL = [s for s in Status if s not in TERMINAL]


def test_statuses_and_terminal_set_match_the_design():
    assert [s.value for s in Status] == [
        "pending",
        "scheduled",
        "ready",
        "running",
        "suspended",
        "backing-off",
        "paused",
        "completed",
        "failed",
        "killed",
        "cancelled",
    ]
    assert {Status.COMPLETED, Status.FAILED, Status.KILLED, Status.CANCELLED} == TERMINAL


# -- submission: pending / scheduled / ready
def test_submitted_with_a_free_key_is_ready_and_dispatched(make_row: MakeRow):
    row, actions = apply(make_row(), Submitted(), NOW)
    assert status(row) is Status.READY
    assert actions == [Dispatch()]
    assert row.modified_at == NOW and row.created_at == T0


def test_submitted_with_a_busy_key_is_pending(make_row: MakeRow):
    row, actions = apply(make_row(), Submitted(key_busy=True), NOW)
    assert status(row) is Status.PENDING
    assert actions == []


def test_submitted_with_a_future_delay_is_scheduled(make_row: MakeRow):
    at = NOW + timedelta(seconds=10)
    row, actions = apply(make_row(), Submitted(key_busy=True, delay_until=at), NOW)
    assert status(row) is Status.SCHEDULED
    assert row.scheduled_at == at
    assert actions == [ScheduleStart(at)]


@pytest.mark.parametrize("delay", [timedelta(0), -timedelta(seconds=1)])
def test_submitted_with_a_delay_already_past_starts_now(make_row: MakeRow, delay: timedelta):
    row, actions = apply(make_row(), Submitted(delay_until=NOW + delay), NOW)
    assert status(row) is Status.READY
    assert actions == [Dispatch()]
    row, actions = apply(make_row(), Submitted(key_busy=True, delay_until=NOW + delay), NOW)
    assert status(row) is Status.PENDING and actions == []


def test_delay_elapsed_makes_a_scheduled_invocation_ready_or_pending(make_row: MakeRow):
    scheduled = make_row(status=Status.SCHEDULED, scheduled_at=NOW)
    row, actions = apply(scheduled, DelayElapsed(), NOW)
    assert status(row) is Status.READY and actions == [Dispatch()]
    row, actions = apply(scheduled, DelayElapsed(key_busy=True), NOW)
    assert status(row) is Status.PENDING and actions == []


def test_key_acquired_makes_a_pending_invocation_ready(make_row: MakeRow):
    row, actions = apply(make_row(status=Status.PENDING), KeyAcquired(), NOW)
    assert status(row) is Status.READY
    assert actions == [Dispatch()]


# -- running, suspension
def test_dispatched_makes_a_ready_invocation_running(make_row: MakeRow):
    row, actions = apply(make_row(status=Status.READY, waiting_on="[2]"), Dispatched(), NOW)
    assert status(row) is Status.RUNNING
    assert row.waiting_on is None
    assert actions == []


def test_suspended_records_what_the_invocation_waits_on(make_row: MakeRow):
    row, actions = apply(make_row(status=Status.RUNNING), Suspended((2, 5)), NOW)
    assert status(row) is Status.SUSPENDED
    assert row.waiting_on == "[2, 5]"
    assert actions == []


def test_woken_makes_a_suspended_invocation_ready(make_row: MakeRow):
    row, actions = apply(make_row(status=Status.SUSPENDED, waiting_on="[2]"), Woken(), NOW)
    assert status(row) is Status.READY
    assert row.waiting_on is None
    assert actions == [Dispatch()]


@pytest.mark.parametrize(
    ("event", "allowed"),
    [
        (DelayElapsed(), {Status.SCHEDULED}),
        (KeyAcquired(), {Status.PENDING}),
        (Dispatched(), {Status.READY}),
        (Suspended((1,)), {Status.RUNNING}),
        (Woken(), {Status.SUSPENDED}),
        (failed(), {Status.RUNNING}),
        (Finished(None, None, 2), {Status.RUNNING}),
        (Resume(), {Status.PAUSED, Status.BACKING_OFF}),
    ],
    ids=lambda x: type(x).__name__ if not isinstance(x, set) else "",
)
def test_events_are_refused_outside_their_statuses(
    make_row: MakeRow, event: Any, allowed: set[Status]
):
    for st in NON_TERMINAL:
        row = make_row(status=st)
        if st in allowed:
            apply(row, event, NOW)  # does not raise
        else:
            with pytest.raises(IllegalTransition, match=st.value):
                apply(row, event, NOW)


def test_illegal_transition_message_names_the_invocation_and_what_was_needed(make_row: MakeRow):
    with pytest.raises(IllegalTransition) as info:
        apply(make_row(status=Status.SUSPENDED), Dispatched(), NOW)
    msg = str(info.value)
    assert "inv_1lifecycle0000000000000001" in msg
    assert "suspended" in msg and "Dispatched" in msg and "ready" in msg


# -- failures and retries
@pytest.mark.parametrize(("attempt", "delay_ms"), [(1, 100), (2, 200), (3, 400)])
def test_attempt_failed_backs_off_with_the_policy_delay(
    make_row: MakeRow, attempt: int, delay_ms: int
):
    row, actions = apply(make_row(status=Status.RUNNING, attempt=attempt), failed(), NOW)
    at = NOW + timedelta(milliseconds=delay_ms)
    assert at == NOW + POLICY.delay(attempt)
    assert status(row) is Status.BACKING_OFF
    assert row.attempt == attempt + 1
    assert row.next_retry_at == at
    assert row.last_error == "ValueError: boom"
    assert row.last_error_stack == "Traceback ...\nValueError: boom"
    assert actions == [ScheduleRetry(at)]


def test_backoff_delay_is_capped_by_max_interval(make_row: MakeRow):
    policy = replace(POLICY, max_attempts=None)
    row, actions = apply(make_row(status=Status.RUNNING, attempt=9), failed(policy=policy), NOW)
    assert row.next_retry_at == NOW + timedelta(seconds=1)
    assert actions == [ScheduleRetry(NOW + timedelta(seconds=1))]


def test_attempt_failed_at_max_attempts_pauses(make_row: MakeRow):
    row, actions = apply(
        make_row(status=Status.RUNNING, attempt=4, next_retry_at=NOW), failed(), NOW
    )
    assert status(row) is Status.PAUSED
    assert row.attempt == 4
    assert row.next_retry_at is None
    assert row.last_error == "ValueError: boom"
    assert actions == []


def test_without_max_attempts_retries_never_stop(make_row: MakeRow):
    policy = replace(POLICY, max_attempts=None)
    row, actions = apply(make_row(status=Status.RUNNING, attempt=1000), failed(policy=policy), NOW)
    assert status(row) is Status.BACKING_OFF
    assert row.attempt == 1001
    assert len(actions) == 1 and isinstance(actions[0], ScheduleRetry)


def test_nondeterminism_pauses_at_once(make_row: MakeRow):
    err = "non-deterministic replay at journal entry 2"
    row, actions = apply(
        make_row(status=Status.RUNNING, attempt=1), failed(err, nondeterminism=True), NOW
    )
    assert status(row) is Status.PAUSED
    assert row.attempt == 1
    assert row.next_retry_at is None
    assert row.last_error == err
    assert actions == []


def test_retry_due_makes_a_backing_off_invocation_ready(make_row: MakeRow):
    row, actions = apply(
        make_row(status=Status.BACKING_OFF, attempt=2, next_retry_at=NOW), RetryDue(), NOW
    )
    assert status(row) is Status.READY
    assert row.next_retry_at is None
    assert row.attempt == 2
    assert actions == [Dispatch()]


@pytest.mark.parametrize("st", [s for s in NON_TERMINAL if s is not Status.BACKING_OFF])
def test_stale_retry_due_changes_nothing(make_row: MakeRow, st: Status):
    before = make_row(status=st)
    row, actions = apply(before, RetryDue(), NOW)
    assert row == before
    assert actions == []


def test_retries_run_max_attempts_times_then_pause_and_resume_allows_one_more(make_row: MakeRow):
    policy = replace(POLICY, max_attempts=3)
    row, _ = apply(make_row(), Submitted(), T0)
    now = T0
    dispatches = 0
    while True:
        row, _ = apply(row, Dispatched(), now)
        dispatches += 1
        row, actions = apply(row, failed(policy=policy), now)
        if status(row) is Status.PAUSED:
            break
        assert actions == [ScheduleRetry(now + policy.delay(row.attempt - 1))]
        now = actions[0].at
        row, actions = apply(row, RetryDue(), now)
        assert actions == [Dispatch()]
    assert dispatches == 3
    assert row.attempt == 3
    assert now == T0 + timedelta(milliseconds=100 + 200)

    row, actions = apply(row, Resume(), now)
    assert status(row) is Status.READY and row.attempt == 4 and actions == [Dispatch()]
    row, _ = apply(row, Dispatched(), now)
    row, actions = apply(row, failed(policy=policy), now)
    assert status(row) is Status.PAUSED and actions == []


# -- finishing
def test_finished_with_output_completes(make_row: MakeRow):
    row, actions = apply(
        make_row(status=Status.RUNNING, waiting_on="[1]", next_retry_at=T0),
        Finished('"done"', None, 7),
        NOW,
    )
    assert status(row) is Status.COMPLETED
    assert row.output == '"done"'
    assert row.failure_code is None and row.failure_message is None
    assert row.completed_at == NOW and row.modified_at == NOW
    assert row.journal_length == 7
    assert row.waiting_on is None and row.next_retry_at is None
    assert actions == [Respond(), ReleaseKey()]


def test_finished_with_a_terminal_failure_is_failed(make_row: MakeRow):
    row, actions = apply(
        make_row(status=Status.RUNNING), Finished(None, Failure(404, "no such order"), 3), NOW
    )
    assert status(row) is Status.FAILED
    assert (row.failure_code, row.failure_message, row.output) == (404, "no such order", None)
    assert actions == [Respond(), ReleaseKey()]


@pytest.mark.parametrize(
    ("cancel_requested", "failure", "expected"),
    [
        (True, Failure(409, "cancelled"), Status.CANCELLED),
        (False, Failure(409, "conflict"), Status.FAILED),  # a handler's own 409
        (True, Failure(500, "compensation failed"), Status.FAILED),
        (True, None, Status.COMPLETED),  # the handler ignored the cancellation and returned
    ],
)
def test_finished_after_cancel(
    make_row: MakeRow, cancel_requested: bool, failure: Failure | None, expected: Status
):
    row, actions = apply(
        make_row(status=Status.RUNNING, cancel_requested=cancel_requested),
        Finished(None if failure else "1", failure, 4),
        NOW,
    )
    assert status(row) is expected
    assert row.failure_code == (failure.code if failure else None)
    assert row.completed_at == NOW
    assert actions == [Respond(), ReleaseKey()]


# -- kill, pause, resume, cancel
def test_kill_while_running_aborts_the_attempt(make_row: MakeRow):
    row, actions = apply(make_row(status=Status.RUNNING), Kill(), NOW)
    assert status(row) is Status.KILLED
    assert (row.failure_code, row.failure_message) == (409, "killed")
    assert row.completed_at == NOW
    assert actions == [AbortAttempt(), Respond(), ReleaseKey()]


@pytest.mark.parametrize("st", [s for s in NON_TERMINAL if s is not Status.RUNNING])
def test_kill_when_not_running_needs_no_abort(make_row: MakeRow, st: Status):
    row, actions = apply(make_row(status=st, waiting_on="[1]", next_retry_at=NOW), Kill(), NOW)
    assert status(row) is Status.KILLED
    assert row.waiting_on is None and row.next_retry_at is None
    assert row.completed_at == NOW
    assert actions == [Respond(), ReleaseKey()]


def test_pause_while_running_aborts_the_attempt(make_row: MakeRow):
    row, actions = apply(make_row(status=Status.RUNNING), Pause(), NOW)
    assert status(row) is Status.PAUSED
    assert row.last_error == "paused by hand"
    assert actions == [AbortAttempt()]


@pytest.mark.parametrize("st", [Status.READY, Status.SUSPENDED, Status.BACKING_OFF])
def test_pause_when_not_running(make_row: MakeRow, st: Status):
    row, actions = apply(
        make_row(status=st, next_retry_at=NOW, last_error="KeyError: x"), Pause("stop"), NOW
    )
    assert status(row) is Status.PAUSED
    assert row.next_retry_at is None
    assert row.last_error == "KeyError: x"  # the real error stays visible
    assert actions == []


def test_pause_of_a_paused_invocation_is_a_no_op(make_row: MakeRow):
    before = make_row(status=Status.PAUSED)
    assert apply(before, Pause(), NOW) == (before, [])


@pytest.mark.parametrize("st", [Status.PENDING, Status.SCHEDULED])
def test_pause_before_start_is_illegal(make_row: MakeRow, st: Status):
    with pytest.raises(IllegalTransition, match="cancel or kill"):
        apply(make_row(status=st), Pause(), NOW)


def test_resume_of_a_paused_invocation_counts_a_new_attempt(make_row: MakeRow):
    row, actions = apply(make_row(status=Status.PAUSED, attempt=4, last_error="x"), Resume(), NOW)
    assert status(row) is Status.READY
    assert row.attempt == 5
    assert row.next_retry_at is None
    assert actions == [Dispatch()]


def test_resume_of_a_backing_off_invocation_retries_now(make_row: MakeRow):
    row, actions = apply(
        make_row(status=Status.BACKING_OFF, attempt=3, next_retry_at=NOW + timedelta(hours=1)),
        Resume(),
        NOW,
    )
    assert status(row) is Status.READY
    assert row.attempt == 3
    assert row.next_retry_at is None
    assert actions == [Dispatch()]
    # the retry timer that fires later is stale
    row2, actions2 = apply(row, RetryDue(), NOW + timedelta(hours=1))
    assert row2 == row and actions2 == []


@pytest.mark.parametrize("st", [Status.RUNNING, Status.READY, Status.SUSPENDED, Status.PENDING])
def test_resume_of_an_invocation_that_is_not_stopped_is_illegal(make_row: MakeRow, st: Status):
    with pytest.raises(IllegalTransition, match="only paused or backing-off"):
        apply(make_row(status=st), Resume(), NOW)


@pytest.mark.parametrize("st", [Status.PENDING, Status.SCHEDULED, Status.READY])
def test_cancel_before_start_cancels_at_once(make_row: MakeRow, st: Status):
    row, actions = apply(make_row(status=st), CancelRequested(), NOW)
    assert status(row) is Status.CANCELLED
    assert row.cancel_requested is True
    assert (row.failure_code, row.failure_message) == (409, "cancelled")
    assert row.completed_at == NOW
    assert actions == [Respond(), ReleaseKey()]


def test_cancel_while_running_delivers_the_cancellation(make_row: MakeRow):
    row, actions = apply(make_row(status=Status.RUNNING), CancelRequested(), NOW)
    assert status(row) is Status.RUNNING
    assert row.cancel_requested is True
    assert row.completed_at is None
    assert actions == [DeliverCancel()]

    # the handler compensates, then fails with the cancellation: cancelled
    row, actions = apply(row, Finished(None, Failure(409, "cancelled"), 5), NOW)
    assert status(row) is Status.CANCELLED
    assert actions == [Respond(), ReleaseKey()]


@pytest.mark.parametrize("st", [Status.SUSPENDED, Status.BACKING_OFF, Status.PAUSED])
def test_cancel_of_a_started_invocation_that_is_not_running(make_row: MakeRow, st: Status):
    row, actions = apply(make_row(status=st), CancelRequested(), NOW)
    assert status(row) is st
    assert row.cancel_requested is True
    assert actions == [DeliverCancel()]


def test_second_cancel_is_a_no_op(make_row: MakeRow):
    before = make_row(status=Status.RUNNING, cancel_requested=True)
    assert apply(before, CancelRequested(), NOW) == (before, [])


# -- terminal statuses
@pytest.mark.parametrize("st", sorted(TERMINAL, key=lambda s: s.value))
@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: type(e).__name__)
def test_nothing_happens_to_a_finished_invocation(make_row: MakeRow, st: Status, event: Any):
    with pytest.raises(IllegalTransition, match=f"is {st.value}"):
        apply(make_row(status=st, completed_at=T0), event, NOW)


def test_unknown_event_is_illegal(make_row: MakeRow):
    with pytest.raises(IllegalTransition, match="unknown event"):
        apply(make_row(), object(), NOW)  # type: ignore[arg-type]


def test_apply_leaves_the_given_row_untouched(make_row: MakeRow):
    before = make_row(status=Status.RUNNING)
    copy = replace(before)
    apply(before, failed(), NOW)
    assert before == copy


def test_a_whole_life_with_a_sleep_and_a_retry(make_row: MakeRow):
    row = make_row()
    seen = []
    for event in [
        Submitted(key_busy=True),
        KeyAcquired(),
        Dispatched(),
        Suspended((1,)),
        Woken(),
        Dispatched(),
        failed(),
        RetryDue(),
        Dispatched(),
        Finished("3", None, 4),
    ]:
        row, _ = apply(row, event, NOW)
        seen.append(row.status)
    assert seen == [
        "pending",
        "ready",
        "running",
        "suspended",
        "ready",
        "running",
        "backing-off",
        "ready",
        "running",
        "completed",
    ]
    assert row.attempt == 2 and row.output == "3"


def test_retry_delays_grow_by_the_policy_up_to_its_cap():
    assert POLICY.delay(1) == timedelta(milliseconds=100)
    assert POLICY.delay(3) == timedelta(milliseconds=400)
    assert POLICY.delay(30) == timedelta(seconds=1)
