"""The protocol between the runtime and the executor, as frozen dataclasses.

Runtime -> executor: :class:`Start`, :class:`Ack`, :class:`Completion`, :class:`Abort`.
Executor -> runtime: :class:`NewEntry`, :class:`Suspend`, :class:`Output`,
:class:`AttemptFailed`.

Values inside messages are JSON text (``str``) produced by :mod:`durable.serde`, so the
runtime never needs the user's types. The worker process sends these objects pickled
over a socket; the in-process runtime passes them through a queue.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field, is_dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "EntryKind",
    "Failure",
    "JournalEntry",
    "Start",
    "Ack",
    "Completion",
    "Abort",
    "NewEntry",
    "Suspend",
    "Output",
    "AttemptFailed",
    "missing_handler_message",
    "ServiceInfo",
    "HandlerInfo",
    "RUNTIME_COMPLETED_KINDS",
]


class EntryKind(StrEnum):
    """The kinds of journal entries."""

    INPUT = "input"
    OUTPUT = "output"
    RUN = "run"
    TIME = "time"
    SLEEP = "sleep"
    GET_STATE = "get_state"
    SET_STATE = "set_state"
    CLEAR_STATE = "clear_state"
    CLEAR_ALL_STATE = "clear_all_state"
    STATE_KEYS = "state_keys"
    CALL = "call"
    ONE_WAY_CALL = "one_way_call"
    AWAKEABLE = "awakeable"
    COMPLETE_AWAKEABLE = "complete_awakeable"
    GET_PROMISE = "get_promise"
    PEEK_PROMISE = "peek_promise"
    COMPLETE_PROMISE = "complete_promise"
    CANCEL_INVOCATION = "cancel_invocation"
    ATTACH_INVOCATION = "attach_invocation"
    COMBINATOR = "combinator"  # which futures a select/wait_completed saw done, in order


#: Entries whose result the runtime provides (the executor waits for a Completion).
RUNTIME_COMPLETED_KINDS = frozenset(
    {
        EntryKind.TIME,
        EntryKind.SLEEP,
        EntryKind.CALL,
        EntryKind.AWAKEABLE,
        EntryKind.GET_PROMISE,
        EntryKind.PEEK_PROMISE,
        EntryKind.COMPLETE_PROMISE,
        EntryKind.ATTACH_INVOCATION,
    }
)


@dataclass(frozen=True, slots=True)
class Failure:
    """A terminal failure: what a caller sees as ``{"code", "message"}``."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One step of an invocation's journal.

    ``payload`` is the request (JSON text: a run's nothing, a sleep's wake-up time, a
    call's target); ``result`` or ``failure`` is set once the entry is completed.
    """

    index: int
    kind: EntryKind
    name: str | None = None
    payload: str | None = None
    result: str | None = None
    failure: Failure | None = None
    completed: bool = False


@dataclass(frozen=True, slots=True)
class Start:
    """Run (or resume by replay) one invocation."""

    invocation_id: str
    service: str
    handler: str
    key: str | None
    journal: tuple[JournalEntry, ...]  # entry 0 is the input
    state: dict[str, str] | None = None  # eager state snapshot for objects/workflows
    headers: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    epoch: int = 0  # which dispatch this is; stale messages carry an older epoch
    # indexes of the completed entries in the order they were completed (so that a
    # combinator deciding for the first time on replay picks the first to complete)
    completion_order: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Ack:
    """The entry at ``index`` is committed: the handler may go past it."""

    invocation_id: str
    epoch: int
    index: int


@dataclass(frozen=True, slots=True)
class Completion:
    """The runtime completed the entry at ``index`` (timer fired, awakeable resolved...)."""

    invocation_id: str
    epoch: int
    index: int
    result: str | None = None
    failure: Failure | None = None


@dataclass(frozen=True, slots=True)
class Abort:
    """Stop running an invocation now (killed, moved to another worker)."""

    invocation_id: str
    epoch: int


@dataclass(frozen=True, slots=True)
class NewEntry:
    """The handler appended an entry. ``needs_ack`` asks for an :class:`Ack`."""

    invocation_id: str
    epoch: int
    entry: JournalEntry
    needs_ack: bool = False


@dataclass(frozen=True, slots=True)
class Suspend:
    """The handler waits on runtime completions of these entries; drop it until then."""

    invocation_id: str
    epoch: int
    waiting_on: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Output:
    """The handler returned (``result``) or raised a TerminalError (``failure``)."""

    invocation_id: str
    epoch: int
    result: str | None = None
    failure: Failure | None = None


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    """The attempt failed: a retryable error, a replay divergence (``nondeterminism``),
    or a problem only a code change can fix (``pause``, e.g. the handler is gone)."""

    invocation_id: str
    epoch: int
    error: str
    stack: str = ""
    nondeterminism: bool = False
    pause: bool = False
    retry_after_s: float | None = None  # RetryableError(retry_after=): the next delay


def missing_handler_message(service: str, handler: str) -> str:
    return (
        f"handler {service}/{handler} is not in the app (was it removed or renamed?): the "
        "invocation waits, paused; restore the handler (it is retried on reload), or kill it"
    )


@dataclass(frozen=True, slots=True)
class HandlerInfo:
    """What discovery found about one handler."""

    name: str
    kind: str  # "exclusive" | "shared" | "workflow" | "service"
    input_type: str
    output_type: str
    input_schema: dict[str, Any] | None = None  # JSON Schema
    output_schema: dict[str, Any] | None = None
    workflow_retention_s: float | None = None  # workflow main: forget it this long after


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """What discovery found about one service, object or workflow."""

    name: str
    kind: str  # "service" | "object" | "workflow"
    handlers: tuple[HandlerInfo, ...]
    retry_policy: dict[str, Any] | None = None  # RetryPolicy.to_dict()

    def handler(self, name: str) -> HandlerInfo | None:
        """The handler named ``name``, or None."""
        for h in self.handlers:
            if h.name == name:
                return h
        return None


def pickle_as_values(namespace: dict[str, Any]) -> None:
    """Pickle every frozen slots dataclass defined in ``namespace`` as (class, values).

    Messages and journal entries cross the worker socket and the operation log as
    pickles; the default pickling of a slots dataclass calls ``dataclasses.fields()`` for
    every object, which made up a tenth of the runtime's CPU per journal entry.
    """
    for cls in list(namespace.values()):
        if not (isinstance(cls, type) and is_dataclass(cls) and "__slots__" in cls.__dict__):
            continue
        if cls.__module__ != namespace["__name__"]:
            continue
        names: tuple[str, ...] = cls.__dict__["__slots__"]
        get: Callable[[object], Any] = operator.attrgetter(*names)
        # cls and get bound as defaults: a local is the fastest read in the pickling path
        if len(names) == 1:

            def reduce(self: object, cls: type = cls, get: Callable[[object], Any] = get) -> Any:
                return (cls, (get(self),))

        else:

            def reduce(self: object, cls: type = cls, get: Callable[[object], Any] = get) -> Any:
                return (cls, get(self))

        # a method set on the class after the fact is the point here; mypy forbids it
        cls.__reduce__ = reduce  # type: ignore[method-assign]


pickle_as_values(globals())

_KINDS = {k.value: k for k in EntryKind}


def _entry(
    index: int,
    kind: str,
    name: str | None,
    payload: str | None,
    result: str | None,
    failure: Failure | None,
    completed: bool,
) -> JournalEntry:
    return JournalEntry(index, _KINDS[kind], name, payload, result, failure, completed)


def _reduce_entry(e: JournalEntry) -> tuple[Any, ...]:
    # the kind as its text: pickling an enum member runs Python code in the enum module
    return (_entry, (e.index, e.kind.value, e.name, e.payload, e.result, e.failure, e.completed))


JournalEntry.__reduce__ = _reduce_entry  # type: ignore[method-assign,assignment]
