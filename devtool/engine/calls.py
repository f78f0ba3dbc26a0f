"""Completions that come from other invocations or from outside: calls and sends that
an idempotency key (or a workflow id) names, attaches, awakeables and workflow promises."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from durable.ids import idempotency_scope, idempotent_invocation_id
from durable.messages import EntryKind, Failure, JournalEntry
from durable.payloads import CompleteAwakeablePayload, CompletePromisePayload

from ..clock import to_dt
from ..errors import BadRequest, Conflict, NotFound
from ..lifecycle import TERMINAL
from ..store import queries
from ..store.ops import AppendEntry, InvocationRow, Op, PutIdempotency, PutPromise
from . import entries
from .effects import AttachTarget, CompleteLater
from .model import Active

if TYPE_CHECKING:
    from .core import Engine

__all__ = [
    "dedupe_child",
    "attach_entry",
    "resolve_awakeable",
    "awakeable_from_entry",
    "promise_entry",
    "complete_promise",
    "quiet",
]

log = logging.getLogger("durable.engine")


async def quiet(coro: Any) -> None:
    try:
        await coro
    except Exception as e:  # a handler's cancel of an unknown id is not fatal
        log.info("%s", e)


async def dedupe_child(engine: Engine, parent: Active, e: JournalEntry, now: float) -> None:
    """Reach the invocation an idempotency key (or a workflow id) names, creating it
    only if there is none; a call to an existing one waits for its result.

    The lookup reads the store, so the caller's later messages are held meanwhile:
    its journal is still written in index order, and its call entry in the same
    commit as the invocation it creates.
    """
    row = parent.row
    at = to_dt(now)
    try:
        p = entries.call_payload(e)
        service, handler, key = p.service, p.handler, p.key
        info = engine.services.get(service)
        hinfo = info.handler(handler) if info else None
        if info is None or hinfo is None:
            child_ops, effects = entries.child(row.id, e, engine.services, now)
            engine._after_commit([AppendEntry(row.id, e, at), *child_ops], effects)
            return
        workflow_main = hinfo.kind == "workflow"
        idem = "run" if workflow_main else p.idempotency_key or ""
        scope = idempotency_scope(service, handler, key, workflow_main)
        existing = await engine.idempotency.lookup(scope, idem)
        target = existing or idempotent_invocation_id(scope, idem)
        if target != p.invocation_id:  # named by a generic call: record the real one
            result = json.dumps(target) if e.kind is EntryKind.ONE_WAY_CALL else e.result
            e2 = replace(e, payload=replace(p, invocation_id=target).to_json(), result=result)
            if parent.journal is not None and parent.journal[e.index] is e:
                parent.journal[e.index] = e2
            e = e2
        ops: list[Op] = [AppendEntry(row.id, e, at)]
        if existing is None:
            child_ops, effects = entries.child(row.id, e, engine.services, now)
            ops += [*child_ops, PutIdempotency(scope, idem, target, at)]
            engine.idempotency.hold(scope, idem, target)
            engine._after_commit(ops, effects)
            engine.idempotency.forget(scope, idem)
        elif e.kind is EntryKind.CALL and workflow_main:
            # as Restate: a workflow's main handler runs once per id; calling it again
            # fails the call (GET .../attach, or attach_invocation, waits for the run)
            already = Failure(409, "the workflow method was already invoked")
            engine._after_commit(ops, (CompleteLater(row.id, e.index, None, already),))
        elif e.kind is EntryKind.CALL:
            engine._after_commit(ops, (AttachTarget(row.id, e.index, target),))
        else:
            engine.store.write_nowait(ops)
    except Exception:
        log.exception("call %s of %s failed", e.index, row.id)
        engine.store.write_nowait([AppendEntry(row.id, e, at)])
        if e.kind is EntryKind.CALL:
            failure = Failure(500, "the runtime could not start this call")
            engine._after_commit([], (CompleteLater(row.id, e.index, None, failure),))
    finally:
        held, parent.held = parent.held or [], None
        for i, (link, m) in enumerate(held):
            engine.on_message(link, m)
            if parent.held is not None:  # held again by a later call: keep the order
                parent.held.extend(held[i + 1 :])
                break


async def attach_entry(engine: Engine, inv_id: str, index: int, target: str) -> None:
    """Complete the entry with ``target``'s outcome, now or when it ends."""
    outcome = await engine.outputs.outcome_if_done(target)
    if outcome is None:
        if target in engine.residency.inv or target in engine.residency.suspended:
            engine.outputs.attach(target, inv_id, index)
            return
        await engine._complete_entry(
            inv_id, index, None, Failure(404, f"unknown invocation {target}")
        )
        return
    await engine._complete_entry(inv_id, index, outcome.output, outcome.failure)


async def resolve_awakeable(
    engine: Engine, awakeable_id: str, result: str | None, failure: Failure | None
) -> str:
    """Complete an awakeable; returns the invocation id that waits on it."""
    if (
        not awakeable_id.startswith("awk_")
        or len(awakeable_id) < 10
        or not all(c.isalnum() or c in "-_" for c in awakeable_id)
    ):
        raise BadRequest(
            f"malformed awakeable id {awakeable_id!r}: ids look like awk_ followed "
            "by URL-safe characters"
        )
    res = engine.residency
    known = res.awakeables.get(awakeable_id)
    a = res.inv.get(known[0]) or res.parked.get(known[0]) if known else None
    status: str | None
    if known and a is not None and a.journal is not None:  # in memory: no read
        inv_id, index = known
        completed, status = a.journal[index].completed, a.row.status
    else:
        await engine.store.write([])  # an awakeable created just now is committed first
        found = await engine.store.read(queries.awakeable, awakeable_id)
        if found is None:
            raise NotFound(f"unknown awakeable {awakeable_id!r}")
        owner, index, completed, status = found
        inv_id = owner or ""  # the awakeables table names its invocation (NOT NULL)
    if completed:
        raise Conflict(f"awakeable {awakeable_id} was already completed")
    if status is not None and status in TERMINAL:
        raise Conflict(
            f"awakeable {awakeable_id} belongs to invocation {inv_id}, which is {status}: "
            "nothing waits on it any more"
        )
    ok = await engine._complete_entry(inv_id, index, result, failure)
    if not ok:
        raise Conflict(f"awakeable {awakeable_id} was already completed")
    return inv_id


async def awakeable_from_entry(engine: Engine, e: JournalEntry) -> None:
    p = CompleteAwakeablePayload.from_json(e.payload)
    try:
        await resolve_awakeable(engine, p.id, p.result, p.failure)
    except Exception as err:
        log.warning("ctx.resolve/reject_awakeable: %s", err)


async def promise_entry(engine: Engine, row: InvocationRow, e: JournalEntry) -> None:
    service, key, name = row.service, row.key or "", e.name or ""
    found = await engine.store.read(queries.promise, service, key, name)
    if e.kind is EntryKind.PEEK_PROMISE:
        if found is None:
            await engine._complete_entry(row.id, e.index, None, None)
        else:
            await engine._complete_entry(row.id, e.index, found[0], found[1])
    elif e.kind is EntryKind.GET_PROMISE:
        if found is not None:
            await engine._complete_entry(row.id, e.index, found[0], found[1])
    elif e.kind is EntryKind.COMPLETE_PROMISE:
        await complete_promise(engine, service, key, name, e.payload or "{}", (row.id, e.index))


async def complete_promise(
    engine: Engine,
    service: str,
    key: str,
    name: str,
    payload: str,
    entry: tuple[str, int] | None = None,
) -> None:
    """Resolve or reject a workflow promise (``payload``: a CompletePromisePayload's JSON)."""
    p = CompletePromisePayload.from_json(payload)
    failure, result = p.failure, p.result
    # Claim the promise before reading the store, so two concurrent completions of
    # one promise cannot both find it open; the claim lasts until the write commits.
    pk = (service, key, name)
    claimed = pk not in engine._promises_completing
    if claimed:
        engine._promises_completing.add(pk)
    try:
        found = await engine.store.read(queries.promise, service, key, name) if claimed else True
        if found is not None:
            if entry:
                await engine._complete_entry(
                    *entry, None, Failure(409, f"promise {name!r} was already completed")
                )
                return
            raise Conflict(f"promise {name!r} of {service}/{key} was already completed")
        await engine.store.write([PutPromise(service, key, name, result, failure, engine._now())])
    finally:
        if claimed:
            engine._promises_completing.discard(pk)
    if entry:
        await engine._complete_entry(*entry, "null", None)
    for inv_id, idx in await engine.store.read(queries.promise_waiters, service, key, name):
        await engine._complete_entry(inv_id, idx, result, failure)
    # waiters still only in memory (entry appended, not yet committed)
    for a in list(engine.residency.inv.values()):
        if a.row.service == service and a.row.key == key and a.journal:
            for ent in a.journal:
                if ent.kind is EntryKind.GET_PROMISE and ent.name == name and not ent.completed:
                    await engine._complete_entry(a.row.id, ent.index, result, failure)
