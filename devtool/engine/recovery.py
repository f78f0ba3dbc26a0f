"""Start-up: every non-terminal invocation of the store back in memory, where it was.

Timers are armed again, key queues rebuilt in arrival order, calls and attaches whose
target ended while nobody could deliver its result completed, suspended invocations
whose completion was committed but not delivered woken, and cancellations requested but
not yet seen by the handler delivered.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING

from durable.messages import EntryKind, Failure
from durable.payloads import CallPayload

from ..clock import from_dt
from ..lifecycle import TERMINAL, Status
from ..store import queries
from ..store.ops import InvocationRow, PutInvocation
from .attempts import release_key
from .commands import deliver_cancel
from .model import CANCELLED, Active, object_key

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["recover"]

_SLICE = 100  # ready invocations dispatched per journal read at start-up


async def recover(engine: Engine) -> None:
    res, keys, timers = engine.residency, engine.keys, engine.timers
    rows = await engine.store.read(queries.active_invocations)
    for inv_id, idx, fire_at in await engine.store.read(queries.pending_timers):
        timers.add(from_dt(fire_at), "sleep", inv_id, idx)
    await _recover_waits(engine)
    waiting: dict[tuple[str, str], list[InvocationRow]] = {}
    ready: list[Active] = []  # dispatched once recovery is done, journals read in slices
    for row in rows:
        st = Status(row.status)
        k = object_key(row)
        if st is Status.SUSPENDED:
            res.suspended[row.id] = tuple(json.loads(row.waiting_on or "[]"))
            if k:
                keys.hold(k, row.id)
            continue
        a = Active(row)
        res.inv[row.id] = a
        if k and st in (Status.PENDING, Status.READY):
            waiting.setdefault(k, []).append(row)  # owner or queue: decided below
            continue
        if st is Status.SCHEDULED:
            timers.add(from_dt(row.scheduled_at) if row.scheduled_at else 0, "start", row.id, 0)
            continue
        if k:
            keys.hold(k, row.id)
        if st is Status.RUNNING:
            a.row = replace(row, status=Status.READY.value)
            ready.append(a)
        elif st is Status.READY:
            ready.append(a)
        elif st is Status.BACKING_OFF:
            at = from_dt(row.next_retry_at) if row.next_retry_at else 0
            timers.add(at, "retry", row.id, 0)
    _recover_key_queues(engine, waiting, ready)
    # pending invocations whose key has no owner (the owner completed before a crash)
    for k in keys.orphaned():
        release_key(engine, k, None)
    # suspended invocations whose completion was committed but not delivered
    for inv_id in await engine.store.read(queries.woken_suspended):
        engine._spawn(engine._wake(inv_id))
    # cancellations requested but not yet seen by the handler
    for row in rows:
        if row.cancel_requested:
            engine._spawn(_recover_cancel(engine, row.id))
    if ready:
        engine._spawn(_dispatch_recovered(engine, ready))


async def _dispatch_recovered(engine: Engine, ready: list[Active]) -> None:
    """Dispatch the recovered ready invocations, reading their journals one query per
    slice (not one read each), and yielding between slices so new calls are served."""
    for i in range(0, len(ready), _SLICE):
        part = [a for a in ready[i : i + _SLICE] if a.journal is None]
        if part:
            found = await engine.store.read(
                queries.invocations_with_journals, [a.row.id for a in part]
            )
            for a in part:
                got = found.get(a.row.id)
                if got is not None and a.journal is None:  # nobody loaded it meanwhile
                    a.journal, a.order = got[1], got[2]
        for a in ready[i : i + _SLICE]:
            engine._dispatch_soon(a)
        await asyncio.sleep(0)


def _recover_key_queues(
    engine: Engine, waiting: dict[tuple[str, str], list[InvocationRow]], ready: list[Active]
) -> None:
    """Rebuild each key's inbox from the ready and pending rows of exclusive handlers.

    A ready row is the key's owner unless an invocation in progress (running,
    suspended, backing-off, paused) holds the key; at most one row runs per key even
    if a crash left more than one ready. The queue keeps arrival order: the time a row
    became pending (``modified_at``), then its time-ordered id.
    """
    keys = engine.keys
    for k, group in waiting.items():
        group.sort(key=lambda r: (r.status != Status.READY.value, r.modified_at, r.id))
        keys.queue.setdefault(k, deque())
        for r in group:
            a = engine.residency.inv[r.id]
            if r.status == Status.READY.value and not keys.busy(k):
                keys.hold(k, r.id)
                ready.append(a)
                continue
            if r.status == Status.READY.value:
                a.row = replace(r, status=Status.PENDING.value)
                engine.store.write_nowait([PutInvocation(a.row)])
            keys.wait(k, r.id)


async def _recover_waits(engine: Engine) -> None:
    """Calls and attaches still waiting at start: complete those whose target ended
    while nobody could deliver its result; re-register the attached ones."""
    waits = await engine.store.read(queries.pending_waits)
    targets: dict[tuple[str, int], tuple[str, str]] = {}
    for inv_id, idx, kind, name, payload in waits:
        if kind == EntryKind.ATTACH_INVOCATION.value:
            target = name or ""
        else:
            target = CallPayload.from_json(payload).invocation_id
        targets[(inv_id, idx)] = (kind, target)
    found = await engine.store.read(queries.outcomes, sorted({t for _, t in targets.values()}))
    for (inv_id, idx), (kind, target) in targets.items():
        info = found.get(target)
        if info is None:
            unknown = Failure(404, f"unknown invocation {target}")
            engine._spawn(engine._complete_entry(inv_id, idx, None, unknown))
            continue
        status, parent_id, parent_entry, output, failure = info
        if Status(status) in TERMINAL:
            engine._spawn(engine._complete_entry(inv_id, idx, output, failure))
        elif kind != EntryKind.CALL.value or (parent_id, parent_entry) != (inv_id, idx):
            engine.outputs.attach(target, inv_id, idx)


async def _recover_cancel(engine: Engine, inv_id: str) -> None:
    a = engine.residency.inv.get(inv_id) or await engine.residency.load(inv_id)
    if a is None or not a.row.cancel_requested:
        return
    journal = await engine._journal_of(a)
    if not any(e.failure == CANCELLED for e in journal):
        await deliver_cancel(engine, a)
