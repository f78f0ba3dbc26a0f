"""Unit tests of what each journal entry kind does (durable.devtool.engine.entries).

``HANDLERS[kind](invocation, entry, services, now)`` does no I/O, so each kind is
checked entry by entry: the entry as journaled, the store operations committed with it,
and the effects the engine carries out at once and after the commit.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from durable.devtool.clock import to_dt
from durable.devtool.engine import effects as fx
from durable.devtool.engine.entries import HANDLERS, cancelled, child, needs_dedupe
from durable.devtool.engine.model import CANCELLED, Active, input_entry, new_row
from durable.devtool.lifecycle import Status
from durable.devtool.store.ops import (
    AppendEntry,
    ClearAllState,
    PutAwakeable,
    PutInvocation,
    PutTimer,
    SetState,
)
from durable.messages import EntryKind, Failure, HandlerInfo, JournalEntry, ServiceInfo

NOW = 1_700_000_000.25
AT = to_dt(NOW)
INV = "inv_1entries00000000000000001"
CHILD = "inv_1entries00000000000000002"
SERVICES = {
    "Cart": ServiceInfo("Cart", "object", (HandlerInfo("add", "exclusive", "Any", "Any"),), None),
    "Mailer": ServiceInfo("Mailer", "service", (HandlerInfo("send", "service", "Any", "Any"),)),
    "Signup": ServiceInfo(
        "Signup",
        "workflow",
        (
            HandlerInfo("run", "workflow", "Any", "Any"),
            HandlerInfo("confirm", "shared", "Any", "Any"),
        ),
    ),
}


@pytest.fixture
def inv() -> Active:
    """A running exclusive handler of Cart/cart-1 with its input entry journaled."""
    row = new_row(INV, "object", "exclusive", "Cart", "add", "cart-1", '"A"', {}, None, AT)
    row = dataclasses.replace(row, status=Status.RUNNING.value)
    return Active(row, [input_entry('"A"')], epoch=7)


def entry(kind: EntryKind, index: int = 1, **fields: object) -> JournalEntry:
    return JournalEntry(index, kind, **fields)  # type: ignore[arg-type]


def handle(inv: Active, e: JournalEntry) -> fx.Step:
    return HANDLERS[e.kind](inv, e, SERVICES, NOW)


def call_entry(kind: EntryKind = EntryKind.CALL, **payload: object) -> JournalEntry:
    p = {"service": "Mailer", "handler": "send", "invocation_id": CHILD, "input": '"hi"'}
    p.update(payload)
    return entry(kind, name="Mailer/send", payload=json.dumps(p))


# ---------------------------------------------------------------------------- timers, clock
def test_sleep_journals_its_wake_time_stores_a_timer_and_arms_it(inv: Active):
    step = handle(inv, entry(EntryKind.SLEEP, payload='{"duration_ms": 1500}'))
    wake = NOW + 1.5
    assert json.loads(step.entry.payload or "") == {
        "duration_ms": 1500,
        "wake_at": int(wake * 1000),
    }
    assert not step.entry.completed
    assert step.ops == [AppendEntry(INV, step.entry, AT), PutTimer(INV, 1, to_dt(wake))]
    assert step.now == (fx.AddTimer(wake, "sleep", INV, 1),)
    assert step.after == ()


def test_time_is_completed_with_the_clock_and_sent_once_committed(inv: Active):
    step = handle(inv, entry(EntryKind.TIME))
    assert step.entry.completed and json.loads(step.entry.result or "") == NOW
    assert step.ops == [AppendEntry(INV, step.entry, AT)]
    assert step.now == ()
    assert step.after == (fx.SendCompletion(INV, 7, 1, step.entry.result, None),)


# ---------------------------------------------------------------------------- state
def test_set_state_writes_the_value_with_the_entry(inv: Active):
    e = entry(EntryKind.SET_STATE, name="count", payload="3", completed=True)
    step = handle(inv, e)
    assert step.entry is e
    assert step.ops == [
        AppendEntry(INV, e, AT),
        SetState("Cart", "cart-1", "count", "3", INV, 1, AT),
    ]
    assert step.now == step.after == ()


def test_clear_state_writes_no_value(inv: Active):
    e = entry(EntryKind.CLEAR_STATE, name="count", completed=True)
    step = handle(inv, e)
    assert step.ops[1] == SetState("Cart", "cart-1", "count", None, INV, 1, AT)


def test_clear_all_state(inv: Active):
    e = entry(EntryKind.CLEAR_ALL_STATE, completed=True)
    step = handle(inv, e)
    assert step.ops == [AppendEntry(INV, e, AT), ClearAllState("Cart", "cart-1", INV, 1, AT)]


# ---------------------------------------------------------------------------- awakeables
def test_awakeable_is_stored_and_watched_in_memory(inv: Active):
    e = entry(EntryKind.AWAKEABLE, payload='{"id": "awk_abcdefgh12"}')
    step = handle(inv, e)
    assert step.ops == [AppendEntry(INV, e, AT), PutAwakeable("awk_abcdefgh12", INV, 1, AT)]
    assert step.now == (fx.WatchAwakeable("awk_abcdefgh12", INV, 1),)
    assert step.after == ()


def test_complete_awakeable_resolves_it_once_committed(inv: Active):
    e = entry(EntryKind.COMPLETE_AWAKEABLE, payload='{"id": "awk_x", "result": "1"}')
    step = handle(inv, e)
    assert step.ops == [AppendEntry(INV, e, AT)]
    assert step.after == (fx.ResolveAwakeableEntry(e),)


# ---------------------------------------------------------------------------- calls
def test_call_creates_the_callee_in_the_same_commit(inv: Active):
    e = call_entry()
    step = handle(inv, e)
    child_row = step.ops[1].row  # type: ignore[union-attr]
    assert step.ops == [
        AppendEntry(INV, e, AT),
        PutInvocation(child_row, new=True),
        AppendEntry(CHILD, input_entry('"hi"'), AT),
    ]
    assert (child_row.id, child_row.service, child_row.handler) == (CHILD, "Mailer", "send")
    assert (child_row.parent_id, child_row.parent_entry) == (INV, 1)
    assert child_row.status == Status.READY.value
    assert step.after == (fx.StartChild(child_row, None),)


def test_one_way_call_has_no_parent_and_a_delayed_one_is_stored_scheduled(inv: Active):
    step = handle(inv, call_entry(EntryKind.ONE_WAY_CALL, delay_ms=2000))
    child_row = step.ops[1].row  # type: ignore[union-attr]
    assert child_row.parent_id is None and child_row.parent_entry is None
    assert child_row.status == Status.SCHEDULED.value
    assert child_row.scheduled_at == to_dt(NOW + 2)
    assert step.after == (fx.StartChild(child_row, NOW + 2),)


def test_call_to_an_unknown_handler_fails_the_entry_a_send_is_dropped(inv: Active):
    step = handle(inv, call_entry(service="Nope"))
    assert step.ops == [AppendEntry(INV, step.entry, AT)]
    assert step.after == (
        fx.CompleteLater(INV, 1, None, Failure(404, "unknown handler Nope/send")),
    )
    step = handle(inv, call_entry(EntryKind.ONE_WAY_CALL, handler="gone"))
    assert step.ops == [AppendEntry(INV, step.entry, AT)]
    assert step.after == (fx.Warn("one-way send to unknown handler Mailer/gone dropped"),)


def test_child_without_a_step_is_what_the_engine_uses_for_idempotent_calls():
    ops, effects = child(INV, call_entry(), SERVICES, NOW)
    assert [type(o) for o in ops] == [PutInvocation, AppendEntry]
    assert [type(x) for x in effects] == [fx.StartChild]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, False),
        ({"idempotency_key": "k1"}, True),
        ({"service": "Signup", "handler": "run"}, True),  # a workflow's main handler
        ({"service": "Signup", "handler": "confirm"}, False),
        ({"service": "Nope", "handler": "run"}, False),
    ],
)
def test_needs_dedupe(payload: dict, expected: bool):
    assert needs_dedupe(call_entry(**payload), SERVICES) is expected


# ---------------------------------------------------------------------------- promises, others
@pytest.mark.parametrize(
    "kind", [EntryKind.GET_PROMISE, EntryKind.PEEK_PROMISE, EntryKind.COMPLETE_PROMISE]
)
def test_promise_entries_are_resolved_once_committed(inv: Active, kind: EntryKind):
    e = entry(kind, name="confirmed", payload='{"result": "true"}')
    step = handle(inv, e)
    assert step.ops == [AppendEntry(INV, e, AT)]
    assert step.after == (fx.ResolvePromiseEntry(inv.row, e),)


def test_cancel_invocation_cancels_its_target_once_committed(inv: Active):
    e = entry(EntryKind.CANCEL_INVOCATION, payload=json.dumps({"invocation_id": CHILD}))
    assert handle(inv, e).after == (fx.CancelTarget(CHILD),)


def test_attach_invocation_waits_for_its_target(inv: Active):
    e = entry(EntryKind.ATTACH_INVOCATION, payload=json.dumps({"invocation_id": CHILD}))
    assert handle(inv, e).after == (fx.AttachTarget(INV, 1, CHILD),)


@pytest.mark.parametrize(
    "kind", [EntryKind.RUN, EntryKind.GET_STATE, EntryKind.STATE_KEYS, EntryKind.COMBINATOR]
)
def test_kinds_without_a_handler_only_append_the_entry(kind: EntryKind):
    assert kind not in HANDLERS


# ---------------------------------------------------------------------------- cancellation
def test_an_await_after_a_cancel_is_journaled_failed_and_answered(inv: Active):
    step = cancelled(inv, entry(EntryKind.SLEEP, payload='{"duration_ms": 10}'), NOW)
    assert step.entry.completed and step.entry.failure == CANCELLED
    assert step.ops == [AppendEntry(INV, step.entry, AT)]  # no timer
    assert step.now == ()
    assert step.after == (fx.SendCompletion(INV, 7, 1, None, CANCELLED),)


def test_a_cancelled_awakeable_is_still_stored(inv: Active):
    step = cancelled(inv, entry(EntryKind.AWAKEABLE, payload='{"id": "awk_abcdefgh12"}'), NOW)
    assert step.ops[1] == PutAwakeable("awk_abcdefgh12", INV, 1, AT)


# ---------------------------------------------------------------------------- purity
@pytest.mark.parametrize(
    "e",
    [
        entry(EntryKind.SLEEP, payload='{"duration_ms": 5}'),
        entry(EntryKind.TIME),
        entry(EntryKind.AWAKEABLE, payload='{"id": "awk_abcdefgh12"}'),
        call_entry(),
        call_entry(EntryKind.ONE_WAY_CALL, delay_ms=10),
    ],
    ids=lambda e: e.kind.value,
)
def test_handlers_change_nothing_they_are_given_and_repeat_exactly(inv: Active, e: JournalEntry):
    before = (inv.row, list(inv.journal or []), list(inv.order), inv.epoch)
    first, second = handle(inv, e), handle(inv, e)
    assert first == second
    assert (inv.row, list(inv.journal or []), list(inv.order), inv.epoch) == before


def test_effects_and_steps_are_small_frozen_values():
    for cls in [fx.Step, *fx.Effect.__args__]:  # type: ignore[attr-defined]
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen, cls
        assert hasattr(cls, "__slots__"), cls
    timer = fx.AddTimer(NOW, "sleep", INV, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        timer.at = NOW + timedelta(seconds=1).total_seconds()  # type: ignore[misc]
