"""Time sources for the engine: the system clock, and a virtual clock for tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

__all__ = ["Clock", "SystemClock", "VirtualClock", "to_dt", "from_dt"]


_EPOCH = datetime(1970, 1, 1)


def to_dt(ts: float) -> datetime:
    """Seconds since the epoch -> naive UTC datetime (how the store keeps time)."""
    # the same value as fromtimestamp(ts, UTC) without tzinfo, at half the cost
    return _EPOCH + timedelta(seconds=ts)


def from_dt(dt: datetime) -> float:
    """Naive UTC datetime -> seconds since the epoch."""
    return dt.replace(tzinfo=UTC).timestamp()


class Clock:
    """Interface: ``now()`` in seconds since the epoch."""

    def now(self) -> float:
        raise NotImplementedError


class SystemClock(Clock):
    def now(self) -> float:
        return time.time()


class VirtualClock(Clock):
    """A clock that moves only when told to (``advance``)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
