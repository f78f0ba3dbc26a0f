"""What each journal entry kind does, as functions that do no I/O.

``HANDLERS[kind](invocation, entry, services, now) -> Step``: the entry as journaled
(a sleep gets its wake-up time, a clock read its result), the store operations to
commit with it, and the effects to carry out (see :mod:`.effects`). ``now`` is the
engine clock's time in seconds. Kinds with no handler (``run``, ``get_state``, ...)
only append the entry. The engine decides the two cases before these: an await started
after a cancellation that found nothing to cancel (:func:`cancelled`), and a call that
must first find the invocation its idempotency key names (:func:`needs_dedupe`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace

from durable.messages import EntryKind, Failure, JournalEntry, ServiceInfo
from durable.payloads import (
    AttachPayload,
    AwakeablePayload,
    CallPayload,
    CancelPayload,
    SendPayload,
    SleepPayload,
)

from ..clock import to_dt
from ..lifecycle import Status
from ..store.ops import (
    AppendEntry,
    ClearAllState,
    Op,
    PutAwakeable,
    PutInvocation,
    PutTimer,
    SetState,
)
from .effects import (
    AddTimer,
    AttachTarget,
    CancelTarget,
    CompleteLater,
    Effect,
    ResolveAwakeableEntry,
    ResolvePromiseEntry,
    SendCompletion,
    StartChild,
    Step,
    Warn,
    WatchAwakeable,
)
from .model import CANCELLED, Active, input_entry, new_row

__all__ = ["HANDLERS", "Handler", "cancelled", "needs_dedupe", "child"]

Services = Mapping[str, ServiceInfo]
Handler = Callable[[Active, JournalEntry, Services, float], Step]


def call_payload(e: JournalEntry) -> CallPayload:
    """The target of a call or send entry (a send's also has its delay)."""
    if e.kind is EntryKind.ONE_WAY_CALL:
        return SendPayload.from_json(e.payload)
    return CallPayload.from_json(e.payload)


def sleep(inv: Active, e: JournalEntry, services: Services, now: float) -> Step:
    """A durable timer: its wake-up time is journaled, stored and armed."""
    ms = SleepPayload.from_json(e.payload).duration_ms
    wake = now + ms / 1000.0
    e = replace(e, payload=SleepPayload(ms, int(wake * 1000)).to_json())
    inv_id = inv.row.id
    return Step(
        e,
        [AppendEntry(inv_id, e, to_dt(now)), PutTimer(inv_id, e.index, to_dt(wake))],
        now=(AddTimer(wake, "sleep", inv_id, e.index),),
    )


def time(inv: Active, e: JournalEntry, services: Services, now: float) -> Step:
    """The runtime's clock, completed at once."""
    e = replace(e, result=json.dumps(now), completed=True)
    row = inv.row
    return Step(
        e,
        [AppendEntry(row.id, e, to_dt(now))],
        after=(SendCompletion(row.id, inv.epoch, e.index, e.result, None),),
    )


def set_state(inv: Active, e: JournalEntry, services: Services, now: float) -> Step:
    """Set (or, for ``clear_state``, clear) one state entry of the key."""
    row, at = inv.row, to_dt(now)
    value = e.payload if e.kind is EntryKind.SET_STATE else None
    return Step(
        e,
        [
            AppendEntry(row.id, e, at),
            SetState(row.service, row.key or "", e.name or "", value, row.id, e.index, at),
        ],
    )


def clear_all_state(inv: Active, e: JournalEntry, services: Services, now: float) -> Step:
    row, at = inv.row, to_dt(now)
    return Step(
        e,
        [
            AppendEntry(row.id, e, at),
            ClearAllState(row.service, row.key or "", row.id, e.index, at),
        ],
    )


def awakeable(inv: Active, e: JournalEntry, services: Services, now: float) -> Step:
    """An awakeable: stored (it is resolved by id) and remembered in memory."""
    row, at = inv.row, to_dt(now)
    awk = AwakeablePayload.from_json(e.payload).id
    return Step(
        e,
        [AppendEntry(row.id, e, at), PutAwakeable(awk, row.id, e.index, at)],
        now=(WatchAwakeable(awk, row.id, e.index),),
    )


def call(inv: Active, e: JournalEntry, services: Services, now: float) -> Step:
    """A call or one-way send: the callee's row and input in the same commit."""
    ops, effects = child(inv.row.id, e, services, now)
    return Step(e, [AppendEntry(inv.row.id, e, to_dt(now)), *ops], after=effects)


def promise(inv: Active, e: JournalEntry, services: Services, now: float) -> Step:
    """get/peek/complete of a workflow promise: carried out once the entry is durable."""
    row = inv.row
    return Step(e, [AppendEntry(row.id, e, to_dt(now))], after=(ResolvePromiseEntry(row, e),))


def complete_awakeable(inv: Active, e: JournalEntry, services: Services, now: float) -> Step:
    return Step(e, [AppendEntry(inv.row.id, e, to_dt(now))], after=(ResolveAwakeableEntry(e),))


def cancel_invocation(inv: Active, e: JournalEntry, services: Services, now: float) -> Step:
    target = CancelPayload.from_json(e.payload).invocation_id
    return Step(e, [AppendEntry(inv.row.id, e, to_dt(now))], after=(CancelTarget(target),))


def attach_invocation(inv: Active, e: JournalEntry, services: Services, now: float) -> Step:
    row = inv.row
    target = AttachPayload.from_json(e.payload).invocation_id
    return Step(
        e, [AppendEntry(row.id, e, to_dt(now))], after=(AttachTarget(row.id, e.index, target),)
    )


HANDLERS: dict[EntryKind, Handler] = {
    EntryKind.SLEEP: sleep,
    EntryKind.TIME: time,
    EntryKind.SET_STATE: set_state,
    EntryKind.CLEAR_STATE: set_state,
    EntryKind.CLEAR_ALL_STATE: clear_all_state,
    EntryKind.AWAKEABLE: awakeable,
    EntryKind.CALL: call,
    EntryKind.ONE_WAY_CALL: call,
    EntryKind.GET_PROMISE: promise,
    EntryKind.PEEK_PROMISE: promise,
    EntryKind.COMPLETE_PROMISE: promise,
    EntryKind.COMPLETE_AWAKEABLE: complete_awakeable,
    EntryKind.CANCEL_INVOCATION: cancel_invocation,
    EntryKind.ATTACH_INVOCATION: attach_invocation,
}


def cancelled(inv: Active, e: JournalEntry, now: float) -> Step:
    """The first await started after a cancel that found nothing to cancel: record it
    failed with the cancellation (no timer, no callee), so the handler sees it now."""
    row, at = inv.row, to_dt(now)
    e = replace(e, failure=CANCELLED, completed=True)
    ops: list[Op] = [AppendEntry(row.id, e, at)]
    if e.kind is EntryKind.AWAKEABLE:  # resolving it later is a clear 409, not a 404
        ops.append(PutAwakeable(AwakeablePayload.from_json(e.payload).id, row.id, e.index, at))
    return Step(e, ops, after=(SendCompletion(row.id, inv.epoch, e.index, None, CANCELLED),))


def needs_dedupe(e: JournalEntry, services: Services) -> bool:
    """A call or send with an idempotency key, or to a workflow's main handler."""
    p = call_payload(e)
    if p.idempotency_key:
        return True
    info = services.get(p.service)
    hinfo = info.handler(p.handler) if info else None
    return hinfo is not None and hinfo.kind == "workflow"


def child(
    parent_id: str, e: JournalEntry, services: Services, now: float
) -> tuple[list[Op], tuple[Effect, ...]]:
    """The callee of a call or send entry: its row and input, and the effect that queues
    it once committed; an unknown handler fails the call (a send is dropped)."""
    p = call_payload(e)
    service, handler, key = p.service, p.handler, p.key
    child_id = p.invocation_id
    one_way = isinstance(p, SendPayload)
    info = services.get(service)
    hinfo = info.handler(handler) if info else None
    if info is None or hinfo is None:
        if one_way:
            return [], (Warn(f"one-way send to unknown handler {service}/{handler} dropped"),)
        failure = Failure(404, f"unknown handler {service}/{handler}")
        return [], (CompleteLater(parent_id, e.index, None, failure),)
    at = to_dt(now)
    row = new_row(
        child_id,
        info.kind,
        hinfo.kind,
        service,
        handler,
        key,
        p.input or "null",
        p.headers,
        p.idempotency_key,
        at,
        parent=None if one_way else (parent_id, e.index),
    )
    delay_s = (p.delay_ms if isinstance(p, SendPayload) else 0) / 1000.0
    wake = now + delay_s
    if delay_s > 0:  # a delayed send is stored scheduled: it survives a restart as such
        row = replace(row, status=Status.SCHEDULED.value, scheduled_at=to_dt(wake))
    ops: list[Op] = [
        PutInvocation(row, new=True),
        AppendEntry(child_id, input_entry(row.input), at),
    ]
    return ops, (StartChild(row, wake if delay_s > 0 else None),)
