"""Carries out the effects of journal entries (see :mod:`.effects`), by their type."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from durable.messages import Ack

from ..store.ops import PutInvocation
from . import attempts, calls, completions
from .effects import (
    AddTimer,
    AttachTarget,
    CancelTarget,
    CompleteLater,
    Deliver,
    Effect,
    Finish,
    ResolveAwakeableEntry,
    ResolvePromiseEntry,
    SendAck,
    SendCompletion,
    StartChild,
    Warn,
    WatchAwakeable,
)
from .model import Active, input_entry

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["run"]

log = logging.getLogger("durable.engine")


def run(engine: Engine, effects: Iterable[Effect]) -> None:
    for eff in effects:
        _RUN[type(eff)](engine, eff)


def _add_timer(engine: Engine, eff: AddTimer) -> None:
    engine.timers.add(eff.at, eff.kind, eff.invocation_id, eff.index)


def _watch_awakeable(engine: Engine, eff: WatchAwakeable) -> None:
    engine.residency.awakeables[eff.awakeable_id] = (eff.invocation_id, eff.index)


def _send_ack(engine: Engine, eff: SendAck) -> None:
    cur = engine.residency.inv.get(eff.invocation_id)
    if cur is not None and cur.epoch == eff.epoch and eff.link is not None:
        eff.link.send(Ack(eff.invocation_id, eff.epoch, eff.index))


def _send_completion(engine: Engine, eff: SendCompletion) -> None:
    engine._send_completion(eff.invocation_id, eff.epoch, eff.index, eff.result, eff.failure)


def _start_child(engine: Engine, eff: StartChild) -> None:
    row = eff.row
    c = Active(row, [input_entry(row.input)])
    engine.residency.inv[row.id] = c
    engine.on_event("created", {"id": row.id, "row": row})
    wake = eff.wake
    engine._enqueue(c, max(wake - engine.clock.now(), 0.001) if wake is not None else 0.0)
    if c.row.status != row.status:  # pending behind its key
        engine.store.write_nowait([PutInvocation(c.row)])


def _complete_later(engine: Engine, eff: CompleteLater) -> None:
    engine._spawn(engine._complete_entry(eff.invocation_id, eff.index, eff.result, eff.failure))


def _promise_entry(engine: Engine, eff: ResolvePromiseEntry) -> None:
    engine._spawn(calls.promise_entry(engine, eff.row, eff.entry))


def _awakeable_entry(engine: Engine, eff: ResolveAwakeableEntry) -> None:
    engine._spawn(calls.awakeable_from_entry(engine, eff.entry))


def _cancel_target(engine: Engine, eff: CancelTarget) -> None:
    engine._spawn(calls.quiet(engine.cancel(eff.target)))


def _attach_target(engine: Engine, eff: AttachTarget) -> None:
    engine._spawn(calls.attach_entry(engine, eff.invocation_id, eff.index, eff.target))


def _warn(engine: Engine, eff: Warn) -> None:
    log.warning("%s", eff.message)


def _deliver(engine: Engine, eff: Deliver) -> None:
    completions.deliver(engine, eff.invocation_id, eff.index, eff.result, eff.failure)


def _finish(engine: Engine, eff: Finish) -> None:
    attempts.finish(engine, eff.invocation, list(eff.actions))


_RUN: dict[type, Callable[[Any, Any], None]] = {
    AddTimer: _add_timer,
    WatchAwakeable: _watch_awakeable,
    SendAck: _send_ack,
    SendCompletion: _send_completion,
    StartChild: _start_child,
    CompleteLater: _complete_later,
    ResolvePromiseEntry: _promise_entry,
    ResolveAwakeableEntry: _awakeable_entry,
    CancelTarget: _cancel_target,
    AttachTarget: _attach_target,
    Warn: _warn,
    Deliver: _deliver,
    Finish: _finish,
}
