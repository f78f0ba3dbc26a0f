"""How an attempt ends (output, suspension, failure) and what an ended invocation
does: answer who waits for it, complete its caller's entry, free its object key."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from durable.messages import Abort, AttemptFailed, EntryKind, JournalEntry, Output, Suspend

from .. import lifecycle as lc
from ..clock import from_dt
from ..lifecycle import Status
from ..store.ops import AppendEntry, PutInvocation
from .effects import Finish
from .model import Active, object_key, outcome_of

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["on_suspend", "attempt_failed", "on_output", "finish", "release_key", "pending"]


def on_suspend(engine: Engine, a: Active, msg: Suspend) -> None:
    assert a.journal is not None
    done = [i for i in msg.waiting_on if i < len(a.journal) and a.journal[i].completed]
    if done:  # a completion crossed the suspension: run it again at once
        a.row = replace(a.row, status=Status.READY.value)
        engine._dispatch_soon(a)
        return
    engine._transition(a, lc.Suspended(msg.waiting_on))
    a.row = replace(a.row, journal_length=len(a.journal))
    engine.residency.park(a, tuple(msg.waiting_on))


def attempt_failed(engine: Engine, a: Active, msg: AttemptFailed) -> None:
    actions = engine._transition(
        a,
        lc.AttemptFailed(
            msg.error,
            msg.stack,
            engine._policy(a.row),
            msg.nondeterminism,
            msg.pause,
            timedelta(seconds=msg.retry_after_s) if msg.retry_after_s is not None else None,
        ),
    )
    a.link = None
    engine.store.write_nowait([PutInvocation(a.row)])
    engine.on_event(
        "failure",
        {
            "id": a.row.id,
            "row": a.row,
            "error": msg.error,
            "nondeterminism": msg.nondeterminism,
        },
    )
    for action in actions:
        if isinstance(action, lc.ScheduleRetry):
            engine.timers.add(from_dt(action.at), "retry", a.row.id, 0)


def on_output(engine: Engine, a: Active, msg: Output) -> None:
    assert a.journal is not None
    out = JournalEntry(len(a.journal), EntryKind.OUTPUT, None, None, msg.result, msg.failure, True)
    a.journal.append(out)
    actions = engine._transition(a, lc.Finished(msg.result, msg.failure, len(a.journal)))
    now = engine._now()
    engine._after_commit(
        [AppendEntry(a.row.id, out, now), PutInvocation(a.row)], (Finish(a, tuple(actions)),)
    )


def finish(engine: Engine, a: Active, actions: list[lc.Action]) -> None:
    row = a.row
    if engine.residency.inv.get(row.id) is a:
        del engine.residency.inv[row.id]
    engine.residency.forget_awakeables(a)
    outcome = outcome_of(row)
    for action in actions:
        if isinstance(action, lc.AbortAttempt) and a.link is not None:
            a.link.send(Abort(row.id, a.epoch))
        elif isinstance(action, lc.ReleaseKey):
            k = object_key(row)
            if k is not None:
                release_key(engine, k, row.id)
        elif isinstance(action, lc.Respond):
            attached = engine.outputs.answer(outcome)
            if row.parent_id is not None and row.parent_entry is not None:
                engine._spawn(
                    engine._complete_entry(
                        row.parent_id, row.parent_entry, row.output, outcome.failure
                    )
                )
            for inv_id, idx in attached:
                engine._spawn(engine._complete_entry(inv_id, idx, row.output, outcome.failure))
    engine.on_event("finished", {"id": row.id, "row": row})


def pending(engine: Engine, inv_id: str) -> bool:
    a = engine.residency.inv.get(inv_id)
    return a is not None and a.row.status == Status.PENDING.value


def release_key(engine: Engine, k: tuple[str, str], owner: str | None) -> None:
    nxt = engine.keys.release(k, owner, lambda i: pending(engine, i))
    if nxt is not None:
        a = engine.residency.inv[nxt]
        engine._transition(a, lc.KeyAcquired())
        engine._dispatch_soon(a)
