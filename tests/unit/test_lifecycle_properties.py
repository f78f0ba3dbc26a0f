"""Stateful property test of the pure lifecycle (``durable.devtool.lifecycle.apply``).

Hypothesis drives a few invocations through random event orders and checks after every
event: a terminal status never changes again; every status is a ``Status``; the actions
``allowed_actions`` offers are exactly the ones ``apply`` accepts (a refused event raises
and so changes nothing); attempt counters only grow; the actions fit the new status.
``DURABLE_PROPERTY_EXAMPLES`` raises the number of event sequences for a long run.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from durable.definitions import RetryPolicy
from durable.devtool.lifecycle import (
    ACTIONS,
    TERMINAL,
    AttemptFailed,
    CancelRequested,
    DelayElapsed,
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
    allowed_actions,
    apply,
    refusal,
)
from durable.devtool.store.ops import InvocationRow
from durable.messages import Failure
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

pytestmark = pytest.mark.timeout(90, method="thread")  # see tests/e2e/test_fuzz_edges.py

T0 = datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    initial_interval=timedelta(milliseconds=100),
    factor=2.0,
    max_interval=timedelta(seconds=1),
    max_attempts=3,
)
N_INVOCATIONS = 3

#: the event a person's action becomes (purge removes a row; it is not a transition)
ACTION_EVENT: dict[str, Any] = {
    "cancel": CancelRequested(),
    "kill": Kill(),
    "pause": Pause(),
    "resume": Resume(),
}

submissions = st.builds(
    Submitted,
    key_busy=st.booleans(),
    delay_until=st.sampled_from([None, T0 - timedelta(seconds=1), T0 + timedelta(hours=1)]),
)
#: the event each waiting status expects next (running has three; see ``progress``)
NEXT: dict[Status, Any] = {
    Status.PENDING: KeyAcquired(),
    Status.SCHEDULED: DelayElapsed(),
    Status.READY: Dispatched(),
    Status.SUSPENDED: Woken(),
    Status.BACKING_OFF: RetryDue(),
    Status.PAUSED: Resume(),
}

events = st.one_of(
    submissions,
    st.builds(DelayElapsed, key_busy=st.booleans()),
    st.just(KeyAcquired()),
    st.just(Dispatched()),
    st.builds(Suspended, st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple)),
    st.just(Woken()),
    st.builds(
        AttemptFailed,
        error=st.just("ValueError: boom"),
        stack=st.just("Traceback ..."),
        policy=st.sampled_from(
            [POLICY, RetryPolicy(max_attempts=None), RetryPolicy(max_attempts=1)]
        ),
        nondeterminism=st.booleans(),
        pause=st.booleans(),
    ),
    st.just(RetryDue()),
    st.builds(
        Finished,
        output=st.sampled_from(['"ok"', None]),
        failure=st.sampled_from([None, Failure(409, "cancelled"), Failure(500, "boom")]),
        journal_length=st.integers(1, 20),
    ),
    st.builds(Pause),
    st.just(Resume()),
)


def new_row(n: int) -> InvocationRow:
    return InvocationRow(
        id=f"inv_prop{n:022d}",
        service="Cart",
        handler="add",
        key=f"cart-{n}",
        service_kind="object",
        handler_kind="exclusive",
        status=Status.PENDING.value,
        input="{}",
        headers="{}",
        idempotency_key=None,
        output=None,
        failure_code=None,
        failure_message=None,
        attempt=1,
        next_retry_at=None,
        last_error=None,
        last_error_stack=None,
        waiting_on=None,
        parent_id=None,
        parent_entry=None,
        restarted_from=None,
        scheduled_at=None,
        cancel_requested=False,
        journal_length=1,
        created_at=T0,
        modified_at=T0,
        completed_at=None,
    )


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rows = [new_row(n) for n in range(N_INVOCATIONS)]
        self.now = T0
        self.applied = 0

    def _apply(self, n: int, event: Any) -> None:
        before = self.rows[n]
        was = Status(before.status)
        self.now += timedelta(seconds=1)
        try:
            after, actions = apply(before, event, self.now)
        except IllegalTransition as e:
            assert str(e), "a refusal must say why"
            return  # the row is unchanged: the machine keeps `before`
        assert was not in TERMINAL, f"{was} took {event!r} and became {after.status}"
        status = Status(after.status)  # raises for a status that is not a Status
        assert after.id == before.id
        assert after.attempt >= before.attempt, f"attempt went down on {event!r}"
        if after is before:
            assert actions == [], f"an ignored {event!r} still asked for {actions}"
        if status in TERMINAL:
            assert Respond() in actions and ReleaseKey() in actions, (status, actions)
            assert after.completed_at is not None
        else:
            assert Respond() not in actions and ReleaseKey() not in actions, (status, actions)
        if Dispatch() in actions:
            assert status is Status.READY, (status, actions)
        if any(isinstance(x, ScheduleRetry) for x in actions):
            assert status is Status.BACKING_OFF and after.next_retry_at is not None
        if any(isinstance(x, ScheduleStart) for x in actions):
            assert status is Status.SCHEDULED and after.scheduled_at is not None
        if status is Status.SUSPENDED:
            assert after.waiting_on, "a suspended invocation must wait on named entries"
        self.rows[n] = after
        self.applied += 1

    @initialize(subs=st.lists(submissions, min_size=N_INVOCATIONS, max_size=N_INVOCATIONS))
    def submit(self, subs: list[Submitted]) -> None:
        for n, event in enumerate(subs):
            self._apply(n, event)

    @rule(n=st.integers(0, N_INVOCATIONS - 1), event=events)
    def event(self, n: int, event: Any) -> None:
        self._apply(n, event)

    @rule(n=st.integers(0, N_INVOCATIONS - 1), data=st.data())
    def progress(self, n: int, data: st.DataObject) -> None:
        """The event the status waits for (so that runs get past the first steps)."""
        status = Status(self.rows[n].status)
        if status is Status.RUNNING:
            event = data.draw(
                events.filter(lambda e: isinstance(e, Suspended | AttemptFailed | Finished))
            )
        else:
            event = NEXT.get(status, RetryDue())
        self._apply(n, event)

    @rule(
        n=st.integers(0, N_INVOCATIONS - 1),
        action=st.sampled_from([a for a in ACTIONS if a != "purge"]),
    )
    def person_acts(self, n: int, action: str) -> None:
        self._apply(n, ACTION_EVENT[action])

    @invariant()
    def offered_actions_are_the_accepted_ones(self) -> None:
        for row in self.rows:
            for action, event in ACTION_EVENT.items():
                try:
                    apply(row, event, self.now)
                except IllegalTransition:
                    accepted = False
                else:
                    accepted = True
                refused = refusal(action, row.status, row.id)
                assert accepted == (refused is None), (action, row.status, refused)
                # the one thing accepted but not offered: pausing a paused one (a no-op)
                offered = action in allowed_actions(row.status)
                assert offered == accepted or (action == "pause" and row.status == "paused"), (
                    action,
                    row.status,
                )

    @invariant()
    def statuses_are_known(self) -> None:
        for row in self.rows:
            assert Status(row.status) in set(Status)
            if Status(row.status) in TERMINAL:
                assert allowed_actions(row.status) == ["purge"]


def _examples(default: int) -> int:
    return int(os.environ.get("DURABLE_PROPERTY_EXAMPLES", default))


LifecycleMachine.TestCase.settings = settings(
    max_examples=_examples(100),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_lifecycle_machine = LifecycleMachine.TestCase
