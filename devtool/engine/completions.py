"""Completing journal entries durably and delivering them (live, or by waking the
invocation), and what each timer does when it fires."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

from durable.messages import Completion, Failure

from .. import lifecycle as lc
from ..clock import from_dt
from ..lifecycle import TERMINAL, Status
from ..store import queries
from ..store.ops import CompleteEntry, DeleteTimer, Op, PutInvocation
from .effects import Deliver
from .model import object_key

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["complete_timer_now", "complete_entry", "deliver", "wake", "fire"]


def complete_timer_now(engine: Engine, inv_id: str, index: int) -> bool:
    """A fired sleep of an invocation held in memory with its journal: complete it
    without a task (what complete_entry does without its reads), delivered once
    committed. False: not that case, use complete_entry."""
    a = engine.residency.inv.get(inv_id)
    if a is None or a.journal is None or (inv_id, index) in engine._completing:
        return False
    if index < len(a.journal) and not a.journal[index].completed:
        a.journal[index] = replace(a.journal[index], result="null", completed=True)
        a.order.append(index)  # a second completion now sees it completed: dropped
        engine._after_commit(
            [
                CompleteEntry(inv_id, index, "null", None, engine._now()),
                DeleteTimer(inv_id, index),
            ],
            (Deliver(inv_id, index, "null", None),),
        )
    return True


async def complete_entry(
    engine: Engine,
    inv_id: str,
    index: int,
    result: str | None,
    failure: Failure | None,
    extra: list[Op] | None = None,
) -> bool:
    """Complete an entry durably, then deliver it (live, or by waking the invocation).

    An entry is completed once: a later completion (a timer firing after a cancel, a
    callee ending after its caller was cancelled or killed) is dropped, so the journal
    keeps what the handler saw. Returns whether this call completed it.
    """
    res = engine.residency
    guard = (inv_id, index)
    if guard in engine._completing:
        return False
    engine._completing.add(guard)
    try:
        a = res.inv.get(inv_id) or res.parked.get(inv_id)
        if a is None and index in res.suspended.get(inv_id, ()):
            a = await res.load(inv_id)  # it wakes up anyway: read its journal now
        if a is not None:
            journal = await engine._journal_of(a)
            if index >= len(journal) or journal[index].completed:
                return False
            journal[index] = replace(journal[index], result=result, failure=failure, completed=True)
            a.order.append(index)
        else:  # a suspended invocation not waiting on it, or an ended one
            found = await engine.store.read(queries.entry_status, inv_id, index)
            if found is None or found[0] or Status(found[1]) in TERMINAL:
                return False
        ops = [CompleteEntry(inv_id, index, result, failure, engine._now()), *(extra or [])]
        await engine.store.write(ops)
    finally:
        engine._completing.discard(guard)
    deliver(engine, inv_id, index, result, failure)
    return True


def deliver(
    engine: Engine, inv_id: str, index: int, result: str | None, failure: Failure | None
) -> None:
    res = engine.residency
    a = res.inv.get(inv_id)
    if a is not None:
        if a.journal is not None and index < len(a.journal) and not a.journal[index].completed:
            a.journal[index] = replace(
                a.journal[index], result=result, failure=failure, completed=True
            )
            a.order.append(index)
        if a.row.status == Status.RUNNING.value and a.link is not None:
            a.link.send(Completion(inv_id, a.epoch, index, result, failure))
        elif a.row.status == Status.SUSPENDED.value and index in json.loads(
            a.row.waiting_on or "[]"
        ):
            engine._spawn(wake(engine, inv_id))  # loaded, not yet woken
        return
    if inv_id in res.loading:
        res.loading[inv_id].append((index, result, failure))
        return
    waiting = res.suspended.get(inv_id)
    if waiting is not None and index in waiting:
        engine._spawn(wake(engine, inv_id))


async def wake(engine: Engine, inv_id: str) -> None:
    a = await engine.residency.load(inv_id)
    if a is None or a.row.status != Status.SUSPENDED.value:
        return
    engine._transition(a, lc.Woken())
    await engine._dispatch(a)


def fire(engine: Engine, kind: str, inv_id: str, index: int) -> None:
    """A timer fell due: a sleep completes, a retry or a delayed start dispatches."""
    if kind == "sleep":
        if not complete_timer_now(engine, inv_id, index):
            engine._spawn(
                complete_entry(engine, inv_id, index, "null", None, [DeleteTimer(inv_id, index)])
            )
    elif kind == "retry":
        a = engine.residency.inv.get(inv_id)
        if a is not None and a.row.status == Status.BACKING_OFF.value:
            if (
                a.row.next_retry_at is not None
                and from_dt(a.row.next_retry_at) > engine.clock.now() + 0.001
            ):
                return  # rescheduled meanwhile
            engine._transition(a, lc.RetryDue())
            engine._dispatch_soon(a)
    elif kind == "start":
        a = engine.residency.inv.get(inv_id)
        if a is not None and a.row.status == Status.SCHEDULED.value:
            k = object_key(a.row)
            busy = bool(k and engine.keys.busy(k))
            engine._transition(a, lc.DelayElapsed(key_busy=busy))
            if k:
                if busy:
                    engine.keys.wait(k, inv_id)
                else:
                    engine.keys.hold(k, inv_id)
            engine.store.write_nowait([PutInvocation(a.row)])
            if a.row.status == Status.READY.value:
                engine._dispatch_soon(a)
