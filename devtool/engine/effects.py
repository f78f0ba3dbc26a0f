"""What handling a journal entry asks the engine to do besides writing: effects.

An entry function (:mod:`.entries`) returns a :class:`Step`: the entry as journaled,
the store operations to commit, the effects to carry out at once (in memory, before the
commit is queued) and those to carry out once the commit landed. Effects are plain
data; :mod:`.runner` carries them out, dispatching on their type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from durable.messages import Failure, JournalEntry

from .. import lifecycle as lc
from ..store.ops import InvocationRow, Op
from .model import Active

__all__ = [
    "Step",
    "Effect",
    "AddTimer",
    "WatchAwakeable",
    "SendAck",
    "SendCompletion",
    "StartChild",
    "CompleteLater",
    "ResolvePromiseEntry",
    "ResolveAwakeableEntry",
    "CancelTarget",
    "AttachTarget",
    "Warn",
    "Deliver",
    "Finish",
]


@dataclass(frozen=True, slots=True)
class AddTimer:
    """Fire ``kind`` ("sleep", "start", "retry") for the invocation at ``at``."""

    at: float
    kind: str
    invocation_id: str
    index: int


@dataclass(frozen=True, slots=True)
class WatchAwakeable:
    """Remember which entry an awakeable completes (a resolve then needs no read)."""

    awakeable_id: str
    invocation_id: str
    index: int


@dataclass(frozen=True, slots=True)
class SendAck:
    """Tell the attempt that its entry is durable (if the attempt still runs)."""

    invocation_id: str
    epoch: int
    index: int
    link: Any


@dataclass(frozen=True, slots=True)
class SendCompletion:
    """Hand an entry's result to the attempt that journaled it (if it still runs)."""

    invocation_id: str
    epoch: int
    index: int
    result: str | None
    failure: Failure | None


@dataclass(frozen=True, slots=True)
class StartChild:
    """Queue the invocation a call or send created (its row was committed with it);
    ``wake`` is when a delayed send starts."""

    row: InvocationRow
    wake: float | None


@dataclass(frozen=True, slots=True)
class CompleteLater:
    """Complete an entry durably, then deliver it (a task: it may read the store)."""

    invocation_id: str
    index: int
    result: str | None
    failure: Failure | None


@dataclass(frozen=True, slots=True)
class ResolvePromiseEntry:
    """Carry out a get/peek/complete of a workflow promise."""

    row: InvocationRow
    entry: JournalEntry


@dataclass(frozen=True, slots=True)
class ResolveAwakeableEntry:
    """Carry out ``ctx.resolve_awakeable`` / ``ctx.reject_awakeable``."""

    entry: JournalEntry


@dataclass(frozen=True, slots=True)
class CancelTarget:
    """Cancel another invocation (``ctx.cancel_invocation``)."""

    target: str


@dataclass(frozen=True, slots=True)
class AttachTarget:
    """Complete the entry with another invocation's outcome once it has one."""

    invocation_id: str
    index: int
    target: str


@dataclass(frozen=True, slots=True)
class Warn:
    """Log a warning (something a handler asked for was dropped)."""

    message: str


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand a committed completion to the invocation (live, or by waking it)."""

    invocation_id: str
    index: int
    result: str | None
    failure: Failure | None


@dataclass(frozen=True, slots=True)
class Finish:
    """The invocation's output is committed: carry out what the lifecycle decided
    (answer who waits, complete the caller's entry, free the key)."""

    invocation: Active
    actions: tuple[lc.Action, ...]


Effect = (
    AddTimer
    | WatchAwakeable
    | SendAck
    | SendCompletion
    | StartChild
    | CompleteLater
    | ResolvePromiseEntry
    | ResolveAwakeableEntry
    | CancelTarget
    | AttachTarget
    | Warn
    | Deliver
    | Finish
)


@dataclass(frozen=True, slots=True)
class Step:
    """What one journal entry does: see the module docstring."""

    entry: JournalEntry
    ops: list[Op]
    now: tuple[Effect, ...] = ()
    after: tuple[Effect, ...] = ()
