"""When a waiting handler is suspended (dropped from memory until the runtime wakes it).

A handler that awaits entries only the runtime can complete (a timer, a call, an
awakeable...) and runs no ``ctx.run`` body is suspended after ``delay`` seconds of
that, on the event loop's clock: the executor emits a ``Suspend`` naming the awaited
entries and stops; the runtime starts it again, by replay, once one completes. Timers
bend the delay: when every awaited entry is a timer due before the delay ends the
handler stays (and suspends only if they are late); when all are due after it, waiting
in memory is of no use and it suspends at once. A delay of 0 suspends at every await.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

__all__ = ["SuspendHost", "Suspension"]


class SuspendHost(Protocol):
    """What the suspension policy asks of its executor."""

    @property
    def closed(self) -> bool:
        """The attempt ended: never suspend."""
        ...

    def pending_remote(self, index: int) -> bool:
        """Entry ``index`` is completed by the runtime and is not completed yet."""
        ...

    def emitted(self, index: int) -> bool:
        """Entry ``index`` has been sent to the runtime."""
        ...

    def suspend(self, waiting: tuple[int, ...]) -> None:
        """Suspend now, waiting on these entries."""


class Suspension:
    """Counts the awaits and bodies of one attempt and suspends it when it only waits."""

    def __init__(self, host: SuspendHost, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self._host = host
        self._loop = loop
        self.delay = delay
        #: ``ctx.run`` bodies running or waiting for their entry's Ack
        self.busy = 0
        self._awaiting: dict[int, int] = {}  # entry -> how many awaits wait on it
        self._due: dict[int, float] = {}  # timer entry -> loop time it is due
        self._handle: asyncio.TimerHandle | None = None

    def begin(self, indexes: Iterable[int]) -> None:
        """The handler starts awaiting these entries."""
        for i in indexes:
            self._awaiting[i] = self._awaiting.get(i, 0) + 1
        self._maybe_suspend()

    def end(self, indexes: Iterable[int]) -> None:
        """Awaits of these entries ended (completed, or the awaiting task stopped)."""
        for i in indexes:
            n = self._awaiting.get(i, 0) - 1
            if n <= 0:
                self._awaiting.pop(i, None)
            else:
                self._awaiting[i] = n
        # Restart the inactivity delay; if other awaits still wait on the runtime (one
        # branch of a gather woke up, the others did not), the handler may still suspend.
        self.cancel()
        self._maybe_suspend()

    def body(self, delta: int) -> None:
        """One more (or one fewer) body in flight: no suspension while any runs."""
        self.busy += delta
        if self.busy > 0:
            self.cancel()
        else:
            self._maybe_suspend()

    def timer_due(self, index: int, at: float) -> None:
        """Timer entry ``index`` is due at loop time ``at``."""
        self._due[index] = at

    def cancel(self) -> None:
        """Drop the scheduled suspension, if any."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _maybe_suspend(self) -> None:
        if self.busy > 0 or not self._awaiting or self._handle or self._host.closed:
            return
        delay = self.delay
        if delay > 0:
            waiting = [i for i in self._awaiting if self._host.pending_remote(i)]
            if waiting and all(i in self._due for i in waiting):
                now = self._loop.time()
                first = min(self._due[i] for i in waiting) - now
                last = max(self._due[i] for i in waiting) - now
                if last <= delay:
                    # only timers due before the suspension would pay off (a 1 s sleep
                    # with a 1 s delay): stay, and suspend only if they are late
                    delay += max(last, 0.0)
                elif first > delay:
                    # only timers due after the delay: nothing but a cancellation can
                    # complete them sooner, so waiting in memory is of no use
                    delay = 0.0
        self._handle = self._loop.call_later(delay, self._suspend_now)

    def _suspend_now(self) -> None:
        self._handle = None
        host = self._host
        if host.closed or self.busy > 0 or not self._awaiting:
            return
        waiting = tuple(sorted(i for i in self._awaiting if host.pending_remote(i)))
        if not waiting or not host.emitted(waiting[-1]):
            # nothing to wait on, or an awaited entry the runtime has not been sent yet
            # (held behind a combinator still deciding): keep running
            return
        # Entries still waiting behind a run body? None can be: busy == 0 here.
        host.suspend(waiting)
