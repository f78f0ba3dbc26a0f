"""The runtime's console lines, kept for the admin API's ``GET /api/events``.

`durable dev` prints reload events, invocation failures and worker restarts; it also
keeps the last :data:`MAX_EVENTS` of them here, numbered, so the TUI (and anything else
over HTTP) can follow them with ``?after=N``. ``boot`` names one run of the runtime: a
client that sees it change knows the numbering started again.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["Event", "EventLog", "MAX_EVENTS"]

MAX_EVENTS = 1000


@dataclass(frozen=True)
class Event:
    seq: int
    at: str  # ISO 8601, UTC, with a Z
    level: str  # "info", "error", "log" (a handler's print or log) or "output" (the worker's)
    message: str


class EventLog:
    """A bounded, numbered log; safe to add to from any thread."""

    def __init__(self, size: int = MAX_EVENTS) -> None:
        self.boot = f"{os.getpid()}-{time.time_ns()}"
        self._events: deque[Event] = deque(maxlen=size)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, message: str, level: str = "info") -> Event:
        at = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
        with self._lock:
            event = Event(next(self._seq), at, level, message)
            self._events.append(event)
        return event

    def since(self, after: int = 0, limit: int = MAX_EVENTS) -> dict[str, Any]:
        """The events numbered above ``after`` (oldest first, at most ``limit``)."""
        with self._lock:
            events = [e for e in self._events if e.seq > after][:limit]
            last = self._events[-1].seq if self._events else 0
        return {"boot": self.boot, "last": last, "events": [asdict(e) for e in events]}
