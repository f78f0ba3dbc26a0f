"""The actions people take on invocations: cancel, kill, pause, resume, purge, retry.

:mod:`durable.devtool.lifecycle` decides what each does to the row; these carry it out
(writes, the journal's pending awaits, the worker, the calls it waits on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from durable.ids import is_invocation_id
from durable.messages import Abort, EntryKind
from durable.payloads import CallPayload

from .. import lifecycle as lc
from ..errors import BadRequest, Conflict, NotFound
from ..lifecycle import Status
from ..store import queries
from ..store.ops import (
    CompleteEntry,
    DeleteTimer,
    InvocationRow,
    Op,
    PurgeInvocation,
    PutInvocation,
)
from .calls import quiet
from .model import CANCELLABLE, CANCELLED, Active, object_key

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["require", "cancel", "deliver_cancel", "kill", "pause", "resume", "retry_now", "purge"]


async def require(engine: Engine, inv_id: str) -> Active:
    """The invocation, in memory; BadRequest, NotFound or Conflict (finished) if not."""
    if not is_invocation_id(inv_id):
        raise BadRequest(f"malformed invocation id {inv_id!r}")
    a = engine.residency.inv.get(inv_id) or await engine.residency.load(inv_id)
    if a is None:
        row = await engine.store.read(queries.invocation, inv_id)
        if row is None:
            raise NotFound(f"unknown invocation {inv_id}")
        raise Conflict(f"invocation {inv_id} is {row.status}; nothing to do")
    return a


def _remove_from_queues(engine: Engine, a: Active) -> None:
    k = object_key(a.row)
    if k:
        engine.keys.remove(k, a.row.id)


async def cancel(engine: Engine, inv_id: str) -> str:
    """Cancel: the handler sees a CancelledError at its next await (it may compensate)."""
    a = await require(engine, inv_id)
    actions = engine._transition(a, lc.CancelRequested())
    if a.row.status == Status.CANCELLED.value:
        _remove_from_queues(engine, a)
        await engine.store.write([PutInvocation(a.row)])
        engine._finish(a, actions)
        return a.row.status
    await engine.store.write([PutInvocation(a.row)])
    if any(isinstance(x, lc.DeliverCancel) for x in actions):
        await deliver_cancel(engine, a)
    return a.row.status


async def deliver_cancel(engine: Engine, a: Active) -> None:
    """Fail the awaits that can last (timers, awakeables, calls, promises, attaches)
    with a cancellation, in one commit, and cancel the calls it waits on. When it
    awaits none of them now, the next one it starts fails instead."""
    inv_id = a.row.id
    while a.held is not None:  # an idempotent call being resolved: let its entry land
        await asyncio.sleep(0.001)
    journal = await engine._journal_of(a)
    completing = engine._completing
    pending = [
        e
        for e in journal
        if not e.completed and e.kind in CANCELLABLE and (inv_id, e.index) not in completing
    ]
    if not pending:
        a.cancel_pending = True
        return
    now = engine._now()
    ops: list[Op] = []
    for e in pending:
        completing.add((inv_id, e.index))
        journal[e.index] = replace(e, failure=CANCELLED, completed=True)
        a.order.append(e.index)
        ops.append(CompleteEntry(inv_id, e.index, None, CANCELLED, now))
        if e.kind is EntryKind.SLEEP:
            ops.append(DeleteTimer(inv_id, e.index))
    try:
        await engine.store.write(ops)
    finally:
        for e in pending:
            completing.discard((inv_id, e.index))
    for e in pending:
        engine._deliver(inv_id, e.index, None, CANCELLED)
        if e.kind is EntryKind.CALL:
            child = CallPayload.from_json(e.payload).invocation_id
            if child:
                engine._spawn(quiet(cancel(engine, child)))


async def kill(engine: Engine, inv_id: str) -> str:
    """Stop at once, without compensation; kills the calls it waits on."""
    a = await require(engine, inv_id)
    journal = await engine._journal_of(a)
    running_on = a.link if a.row.status == Status.RUNNING.value else None
    actions = engine._transition(a, lc.Kill())
    _remove_from_queues(engine, a)
    ops: list[Op] = [PutInvocation(a.row)]
    for e in journal:
        if e.kind is EntryKind.SLEEP and not e.completed:
            ops.append(DeleteTimer(a.row.id, e.index))
    await engine.store.write(ops)
    for e in journal:
        if e.kind is EntryKind.CALL and not e.completed:
            child = CallPayload.from_json(e.payload).invocation_id
            if child:
                engine._spawn(quiet(kill(engine, child)))
    engine._finish(a, actions)
    if running_on is not None:
        engine.on_running_killed(running_on)
    return a.row.status


async def pause(engine: Engine, inv_id: str) -> str:
    a = await require(engine, inv_id)
    was_running = a.row.status == Status.RUNNING.value
    engine._transition(a, lc.Pause())
    if was_running and a.link is not None:
        a.link.send(Abort(a.row.id, a.epoch))
        a.link = None
    await engine.store.write([PutInvocation(a.row)])
    return a.row.status


async def resume(engine: Engine, inv_id: str) -> str:
    a = await require(engine, inv_id)
    actions = engine._transition(a, lc.Resume())
    await engine.store.write([PutInvocation(a.row)])
    engine._run_actions(a, actions)
    return a.row.status


def retry_now(
    engine: Engine, predicate: Callable[[InvocationRow], bool] | None = None
) -> list[str]:
    """Retry backing-off and paused invocations at once (after a reload)."""
    done = []
    for a in list(engine.residency.inv.values()):
        if a.row.status in (Status.BACKING_OFF.value, Status.PAUSED.value) and (
            predicate is None or predicate(a.row)
        ):
            actions = engine._transition(a, lc.Resume())
            engine.store.write_nowait([PutInvocation(a.row)])
            engine._run_actions(a, actions)
            done.append(a.row.id)
    return done


async def purge(engine: Engine, inv_id: str) -> None:
    if not is_invocation_id(inv_id):
        raise BadRequest(f"malformed invocation id {inv_id!r}")
    if inv_id in engine.residency.inv or inv_id in engine.residency.suspended:
        raise Conflict(f"invocation {inv_id} is not finished; kill or cancel it before purging")
    row = await engine.store.read(queries.invocation, inv_id)
    if row is None:
        raise NotFound(f"unknown invocation {inv_id}")
    await engine.store.write([PurgeInvocation(inv_id)])
