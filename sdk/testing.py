"""An in-process runtime for pytest, with a virtual clock.

Example::

    from datetime import timedelta
    import durable.testing

    async def test_reminder():
        async with durable.testing.Runtime([reminders]) as rt:
            inv = await rt.send(remind, "call mum")
            await rt.advance(timedelta(days=2))     # durable sleeps fire at once
            assert await rt.output(inv) == "reminded"

The runtime is the real engine over an in-memory DuckDB store, with handlers run by
the executor on the test's own event loop (no worker process), so a test of a multi-day
flow takes milliseconds. This module imports the runtime (and DuckDB) when a Runtime is
created; ``import durable`` alone does not.

An app written with ``import restate`` is imported inside
``durable.restate_alias.restate_alias()`` to test it here (``durable dev`` maps
``restate`` on its own; a test process is left alone, as it may use the real SDK too).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from . import serde as _serde
from .definitions import HandlerDef, ServiceDef, handler_of
from .exceptions import TerminalError
from .executor import failure_to_exception
from .messages import JournalEntry

if TYPE_CHECKING:  # the runtime is imported when a Runtime starts, not with durable
    from durable.devtool.engine import Engine

__all__ = ["Runtime"]


class Runtime:
    """An in-process durable runtime for tests.

    Args:
        services: The services to serve.
        virtual_clock: Use a clock that moves only with :meth:`advance` (default True).
        suspend_after: Seconds before a waiting handler is suspended (0: at once, which
            exercises replay on every await).
    """

    def __init__(
        self, services: list[ServiceDef], *, virtual_clock: bool = True, suspend_after: float = 0.0
    ) -> None:
        self._services = {s.name: s for s in services}
        self._virtual = virtual_clock
        self._suspend_after = suspend_after
        self.engine: Engine = None  # type: ignore[assignment]  # set on entering
        self._store: Any = None
        self._link: Any = None
        self.clock: Any = None

    async def __aenter__(self) -> Runtime:
        from durable.devtool.clock import SystemClock, VirtualClock
        from durable.devtool.engine import Engine
        from durable.devtool.store import Store
        from durable.devtool.workers import InlineLink

        self.clock = VirtualClock() if self._virtual else SystemClock()
        self._store = await asyncio.to_thread(Store.open, ":memory:")
        self.engine = Engine(self._store, self.clock)
        await self.engine.start()
        self._link = InlineLink(self.engine, self._services, self._suspend_after)
        self.engine.set_link(self._link, {s.name: s.info() for s in self._services.values()})
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._link.stop()
        await self.engine.stop()
        await asyncio.to_thread(self._store.close)

    @staticmethod
    def _target(handler: Any) -> tuple[str, str, HandlerDef | None]:
        if isinstance(handler, str):
            service, _, name = handler.partition("/")
            return service, name, None
        h = handler_of(handler)
        return h.service_name, h.name, h

    async def send(
        self,
        handler: Any,
        arg: Any = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        delay: timedelta | None = None,
    ) -> str:
        """Send a one-way request; returns the invocation id.

        ``handler`` is a decorated handler function or ``"Service/handler"``.
        """
        service, name, hdef = self._target(handler)
        text = (
            _serde.encode_with(hdef.input_serde, arg)
            if hdef is not None and hdef.input_serde is not None
            else _serde.serialize(arg)
        )
        inv_id: str
        inv_id, _existing = await self.engine.submit(
            service,
            name,
            key,
            text,
            {},
            idempotency_key,
            delay.total_seconds() if delay else 0.0,
        )
        return inv_id

    async def call(
        self,
        handler: Any,
        arg: Any = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Call a handler and return its result (raises TerminalError on failure)."""
        inv_id = await self.send(handler, arg, key=key, idempotency_key=idempotency_key)
        return await self.output(inv_id, handler)

    async def output(self, invocation_id: str, handler: Any = None) -> Any:
        """Wait for an invocation's result (deserialized with the handler's output type)."""
        outcome = await self.engine.output(invocation_id, wait=True)
        if outcome is None:
            raise TerminalError(f"unknown invocation {invocation_id}", 404)
        if outcome.failure is not None:
            raise failure_to_exception(outcome.failure)
        hdef = handler_of(handler) if handler is not None and not isinstance(handler, str) else None
        if hdef is not None and hdef.output_serde is not None:
            return _serde.decode_with(hdef.output_serde, outcome.output)
        return _serde.deserialize(outcome.output, hdef.output_type if hdef else None)

    async def status(self, invocation_id: str) -> str:
        """The invocation's lifecycle status."""
        from durable.devtool.store import queries

        await self.engine.barrier()
        live = self.engine.live_status(invocation_id)
        if live is not None:
            return live
        row = await self._store.read(queries.invocation, invocation_id)
        if row is None:
            raise TerminalError(f"unknown invocation {invocation_id}", 404)
        status: str = row.status
        return status

    async def advance(self, delta: timedelta) -> None:
        """Move the virtual clock: sleeps and delayed sends due by then fire now.

        Time moves timer by timer: each due timer fires at its own time and the handlers
        it wakes run before the next one, so a sleep started after an earlier one fired
        (day 1, then one more day) also fires if it falls within ``delta``.
        """
        if not self._virtual:
            raise TypeError("advance() needs Runtime(virtual_clock=True)")
        target = self.clock.now() + delta.total_seconds()
        while True:
            await self.settle()
            at = self.engine.next_timer_at()
            if at is None or at > target + 0.001:  # (float sums: a timer due at the target)
                break
            if at > self.clock.now():
                self.clock.advance(at - self.clock.now())
            self.engine.poke_timers()
            await asyncio.sleep(0)
        if target > self.clock.now():
            self.clock.advance(target - self.clock.now())
        self.engine.poke_timers()
        await self.settle()

    async def settle(self, timeout: float = 10.0) -> None:
        """Let in-flight work run until the runtime is idle: no task of the engine, no
        write queued, no handler about to run or busy in a ``ctx.run`` body."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while quiet < 3 and loop.time() < deadline:
            await self.engine.barrier()
            for _ in range(5):
                await asyncio.sleep(0)
            quiet = quiet + 1 if self._idle() else 0
            if quiet == 0:
                await asyncio.sleep(0.001)

    def _idle(self) -> bool:
        if not self.engine.idle() or not self._store.writer._queue.empty():
            return False
        return not any(ex.bodies_running > 0 for ex in self._link.executors.values())

    async def cancel(self, invocation_id: str) -> str:
        """Cancel an invocation (it sees a CancelledError at its next await); its status."""
        status: str = await self.engine.cancel(invocation_id)
        await self.settle()
        return status

    async def kill(self, invocation_id: str) -> str:
        """Kill an invocation (stopped at once, no compensation); its status."""
        status: str = await self.engine.kill(invocation_id)
        await self.settle()
        return status

    async def journal(self, invocation_id: str) -> list[JournalEntry]:
        """The committed journal of an invocation (``JournalEntry`` objects)."""
        from durable.devtool.store import queries

        await self.engine.barrier()
        entries: list[JournalEntry] = await self._store.read(queries.journal, invocation_id)
        return entries

    async def resolve_awakeable(self, awakeable_id: str, value: Any) -> None:
        """Resolve an awakeable as an outside system would."""
        await self.engine.resolve_awakeable(awakeable_id, _serde.serialize(value), None)

    async def reject_awakeable(self, awakeable_id: str, message: str, code: int = 500) -> None:
        from durable.messages import Failure

        await self.engine.resolve_awakeable(awakeable_id, None, Failure(code, message))

    async def state(self, service: str, key: str) -> dict[str, Any]:
        """The committed state of an object or workflow key (values parsed from JSON)."""
        from durable.devtool.store import queries

        await self.engine.barrier()
        raw = await self._store.read(queries.state, service, key)
        return {k: _serde.deserialize(v) for k, v in raw.items()}
