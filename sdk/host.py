"""The executor host: runs the invocations a runtime starts, one executor each.

Both ends a runtime talks to use it: the worker process (its messages cross a socket)
and the inline link (``durable dev --inline``, ``durable.testing``: the same loop as
the engine). A :class:`~durable.messages.Start` replaces any executor still running
that invocation (an older epoch) and starts a new attempt; ``Ack``, ``Completion`` and
``Abort`` reach the executor of their invocation when their epoch is its own, and are
dropped otherwise (a stale message about an attempt already replaced). A ``Start`` for a
handler the app does not have pauses the invocation with a message saying how to fix it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from .definitions import HandlerDef, ServiceDef, find_handler
from .executor import Executor
from .messages import Abort, Ack, AttemptFailed, Completion, Start, missing_handler_message

__all__ = ["ExecutorHost"]


class ExecutorHost:
    """Runs handlers for a runtime; messages out go to ``emit``.

    Args:
        services: The app's services by name.
        emit: Where the executors' messages go (NewEntry, Suspend, Output, AttemptFailed).
        suspend_after: Seconds a handler waits on the runtime before it is suspended.
    """

    def __init__(
        self,
        services: Mapping[str, ServiceDef],
        emit: Callable[[Any], None],
        suspend_after: float = 0.0,
    ) -> None:
        self.services = services
        self.suspend_after = suspend_after
        #: The running attempt of each invocation, by invocation id.
        self.executors: dict[str, Executor] = {}
        self._emit = emit
        self._tasks: set[asyncio.Task[None]] = set()

    def handler(self, service: str, name: str) -> HandlerDef | None:
        """The app's handler ``service/name``, or None."""
        return find_handler(self.services, service, name)

    def receive(self, msg: Start | Ack | Completion | Abort) -> None:
        """A message from the runtime."""
        if isinstance(msg, Start):
            self._start(msg)
            return
        ex = self.executors.get(msg.invocation_id)
        if ex is not None and ex.start.epoch == msg.epoch:
            ex.deliver(msg)

    def _start(self, start: Start) -> None:
        inv_id = start.invocation_id
        old = self.executors.pop(inv_id, None)
        if old is not None:
            old.deliver(Abort(inv_id, old.start.epoch))
        hdef = self.handler(start.service, start.handler)
        if hdef is None:
            message = missing_handler_message(start.service, start.handler)
            self._emit(AttemptFailed(inv_id, start.epoch, message, "", pause=True))
            return
        ex = Executor(hdef, start, self._emit, self.suspend_after)
        self.executors[inv_id] = ex
        task = asyncio.get_running_loop().create_task(ex.run())
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if self.executors.get(inv_id) is ex:
                del self.executors[inv_id]

        task.add_done_callback(done)

    async def stop(self) -> None:
        """Stop every running attempt (the runtime resumes them by replay)."""
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
