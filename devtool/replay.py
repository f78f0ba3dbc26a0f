"""Replay: run today's code against a recorded journal, with no side effects.

The runtime sends a :class:`ReplayRequest` (a ``Start`` holding the recorded journal) to
the worker, which has the user's code; the worker answers with a :class:`ReplayResult`.
:func:`replay` drives an :class:`~durable.executor.Executor` in ``replay_only`` mode:
every ctx call is matched against the recorded entry (kind and name) and answered
with the recorded result; ``ctx.run`` bodies never run; the replay stops, reporting a
match, when the handler asks for an entry past the recorded journal, waits on an
entry the journal never completed, or returns. Nothing it does reaches the engine or
the store. The first divergence is reported with its entry index, what was recorded,
what the code asked for, and the file and line of the call.

This module is imported by the worker process: it must not import the store.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from durable.exceptions import NonDeterminismError
from durable.messages import (
    AttemptFailed,
    EntryKind,
    JournalEntry,
    NewEntry,
    Output,
    Start,
    Suspend,
)

if TYPE_CHECKING:
    from durable.definitions import HandlerDef
    from durable.executor import Executor

__all__ = ["ReplayRequest", "ReplayResult", "replay", "DEFAULT_TIMEOUT_S"]

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """Runtime -> worker: replay ``start.journal`` against the current code."""

    request_id: int
    start: Start
    timeout: float = DEFAULT_TIMEOUT_S
    #: the journal was pulled from Restate (``durable pull``): guessed awakeable places
    #: are settled and combinator entries made as the code asks (see the executor)
    pulled: bool = False


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Worker -> runtime: how the replay went.

    ``outcome`` is ``match`` (the code makes the recorded calls in the recorded order),
    ``divergence`` (``index``, ``recorded``, ``requested``, ``location`` say where),
    ``error`` (the code raised, or the handler is gone), ``timeout`` or ``unavailable``
    (no worker could run it).
    """

    request_id: int
    invocation_id: str
    outcome: str
    message: str = ""
    index: int | None = None
    recorded: str | None = None
    requested: str | None = None
    location: str | None = None
    entries_checked: int = 0
    stopped: str = ""
    output: str | None = None
    #: a pulled journal as the replay settled it (renumbered), and each entry's index in
    #: the stored journal (None: a combinator entry the replay made); empty if not pulled
    journal: tuple[JournalEntry, ...] = ()
    stored: tuple[int | None, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.invocation_id,
            "outcome": self.outcome,
            "message": self.message,
            "index": self.index,
            "recorded": self.recorded,
            "requested": self.requested,
            "location": self.location,
            "entries_checked": self.entries_checked,
            "stopped": self.stopped,
        }


async def replay(hdef: HandlerDef | None, req: ReplayRequest) -> ReplayResult:
    """Replay one recorded journal with ``hdef`` (None: the handler is not in the app).

    For a pulled journal, the indexes reported are the stored journal's, and the result
    holds the journal as the replay settled it."""
    holder: list[Executor] = []
    result = await _replay(hdef, req, holder)
    if not holder or holder[0].stored is None:
        return result
    ex = holder[0]
    journal = tuple(dataclasses.replace(e, index=n) for n, e in enumerate(ex.journal))
    return dataclasses.replace(result, journal=journal, stored=tuple(ex.stored or ()))


async def _replay(hdef: HandlerDef | None, req: ReplayRequest, holder: list[Any]) -> ReplayResult:
    s = req.start
    if hdef is None:
        return ReplayResult(
            req.request_id,
            s.invocation_id,
            "error",
            f"handler {s.service}/{s.handler} is not in this app (was it removed or renamed?)",
        )
    messages: list[Any] = []
    from durable.executor import Executor  # not at import: the runtime imports this module

    ex = Executor(hdef, s, messages.append, suspend_after=0.0, replay_only=True, pulled=req.pulled)
    holder.append(ex)
    journal = s.journal
    recorded_len = len(journal) - (1 if journal and journal[-1].kind is EntryKind.OUTPUT else 0)
    recorded_output = journal[-1] if len(journal) > recorded_len else None
    stored = ex.stored  # a pulled journal: report the stored indexes, not the settled ones

    def at(i: int) -> int:
        if stored is None:
            return i
        if i < len(stored):
            was = stored[i]
            return was if was is not None else i
        return i - len(stored) + len(journal)

    def checked_to(n: int) -> int:  # entries 1..n-1 of the replay, as stored entries
        if stored is None:
            return max(min(n, recorded_len) - 1, 0)
        return sum(1 for i in stored[1:n] if i is not None and i < recorded_len)

    try:
        await asyncio.wait_for(ex.run(), req.timeout)
    except TimeoutError:
        return ReplayResult(
            req.request_id,
            s.invocation_id,
            "timeout",
            f"the handler did not reach its next durable call within {req.timeout:g} s "
            "(does it wait on something that is not a ctx call?)",
            entries_checked=checked_to(ex.next_index),
        )
    div = ex.divergence
    if div is not None:
        if stored is not None:
            div = NonDeterminismError(at(div.index), div.recorded, div.requested, div.location)
        return ReplayResult(
            req.request_id,
            s.invocation_id,
            "divergence",
            str(div),
            index=div.index,
            recorded=div.recorded,
            requested=div.requested,
            location=div.location,
            entries_checked=max(div.index - 1, 0),
        )
    checked = checked_to(ex.next_index)
    for msg in messages:
        if isinstance(msg, AttemptFailed):
            return ReplayResult(
                req.request_id,
                s.invocation_id,
                "error",
                f"the handler raised during replay: {msg.error}",
                entries_checked=checked,
            )
    out = next((m for m in messages if isinstance(m, Output)), None)
    if out is not None:
        stopped = "the handler returned"
        if recorded_output is not None:
            rf = recorded_output.failure
            same = (
                (out.failure is not None and rf is not None and out.failure == rf)
                if (out.failure or rf)
                else out.result == recorded_output.result
            )
            if not same:
                stopped += " (with another output than the recorded one)"
        return ReplayResult(
            req.request_id,
            s.invocation_id,
            "match",
            stopped=stopped,
            entries_checked=checked,
            output=out.result,
        )
    sus = next((m for m in messages if isinstance(m, Suspend)), None)
    if sus is not None:
        on = ", ".join(str(at(i)) for i in sus.waiting_on)
        return ReplayResult(
            req.request_id,
            s.invocation_id,
            "match",
            stopped=f"the handler waits on entry {on}, not completed in the journal",
            entries_checked=checked,
        )
    if ex.replay_end is not None:
        return ReplayResult(
            req.request_id,
            s.invocation_id,
            "match",
            stopped=f"the handler went past the recorded journal (at entry {at(ex.replay_end)})",
            entries_checked=checked,
        )
    if any(isinstance(m, NewEntry) for m in messages):  # cannot happen in replay_only mode
        return ReplayResult(req.request_id, s.invocation_id, "error", "replay produced a new entry")
    return ReplayResult(
        req.request_id, s.invocation_id, "error", "the replay stopped without a result"
    )
