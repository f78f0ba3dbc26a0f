"""Timers on the engine's clock: durable sleeps, delayed starts and retries.

One heap and one task; a virtual clock (``durable.testing``) is re-checked every 50 ms
and on :meth:`Timers.poke`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

from ..clock import Clock, SystemClock

__all__ = ["Timers"]


class Timers:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, str, str, int]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    def add(self, at: float, kind: str, inv_id: str, index: int) -> None:
        """Fire ``kind`` ("sleep", "start" or "retry") for ``inv_id`` at ``at``."""
        heapq.heappush(self._heap, (at, next(self._seq), kind, inv_id, index))
        if self._heap[0][3] == inv_id and self._heap[0][1] is not None:
            self._wake.set()  # the new timer is the earliest: re-arm the loop

    def next_at(self) -> float | None:
        """When the earliest timer is due, if any."""
        return self._heap[0][0] if self._heap else None

    def poke(self) -> None:
        """Re-check timers now (after a virtual clock moved)."""
        self._wake.set()

    async def run(self, fire: Callable[[str, str, int], None]) -> None:
        """Call ``fire(kind, invocation id, index)`` for each timer as it falls due."""
        timers = self._heap
        while True:
            now = self.clock.now()
            while timers and timers[0][0] <= now:
                _at, _seq, kind, inv_id, index = heapq.heappop(timers)
                fire(kind, inv_id, index)
            self._wake.clear()
            timeout = None
            if timers:
                timeout = max(timers[0][0] - self.clock.now(), 0)
                if not isinstance(self.clock, SystemClock):
                    timeout = min(timeout, 0.05)
                elif timeout:
                    # wake just after the due time, not a hair before it (the wall clock
                    # and the loop's clock differ in their last digits): a second short
                    # wait would cost another millisecond of epoll's resolution
                    timeout += 0.0002
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
