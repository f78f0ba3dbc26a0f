"""The durable futures handlers hold: an asyncio future and, maybe, a journal index.

The executor makes them (each ctx call that has a result returns one); the handler
awaits them or passes them to :mod:`durable.combinators`. Awaiting one the runtime
completes (``remote``) tells its owner, so the owner may suspend the handler while it
waits. The attributes without an underscore are what the executor and the combinators
read; handler code only awaits, or asks :meth:`~JournalFuture.done`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any, Protocol, TypeAlias, runtime_checkable

from .context import CallFuture, DurableFuture, SleepFuture

__all__ = [
    "AwaitTracker",
    "Done",
    "EntryFuture",
    "FutureOwner",
    "JournalFuture",
    "JournalCallFuture",
    "JournalSleepFuture",
]

#: The asyncio future of a journal entry: its result as JSON text (None: no value), or
#: its failure as the exception.
EntryFuture: TypeAlias = asyncio.Future[str | None]


class AwaitTracker(Protocol):
    """What a future tells its owner (the executor) while the handler awaits it."""

    def begin_await(self, index: int | None) -> None: ...

    def end_await(self, index: int | None) -> None: ...

    def cancel_target(self, invocation_id: str) -> None: ...


@runtime_checkable
class FutureOwner(Protocol):
    """What :mod:`durable.combinators` ask of the owner of the futures they get (the
    executor; ``durable serve``'s adapter implements it over restate-sdk's futures)."""

    async def gather(self, futures: list[Any]) -> None: ...

    async def wait_completed(
        self, futures: list[Any], mode: str
    ) -> tuple[list[Any], list[Any]]: ...

    def sleep(self, delta: timedelta, name: str | None = None) -> DurableFuture[None]: ...


class Done:
    """An awaitable that is already done: what an eager action returns, so that both
    ``h.cancel_invocation()`` and ``await h.cancel_invocation()`` (restate 1.3) work."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # a generator: await gives None at once


class JournalFuture(DurableFuture[Any]):
    """A durable result backed by an asyncio future and, maybe, a journal index.

    Attributes:
        owner: The executor of the invocation it belongs to.
        inner: The asyncio future the executor completes.
        index: The journal index of its entry.
        remote: True when the runtime completes it (awaiting it may suspend).
    """

    __slots__ = ("owner", "inner", "index", "remote", "_convert")

    def __init__(
        self,
        owner: AwaitTracker,
        inner: EntryFuture,
        index: int | None,
        remote: bool,
        convert: Callable[[str | None], Any] | None = None,
    ) -> None:
        self.owner = owner
        self.inner = inner
        self.index = index
        self.remote = remote
        self._convert = convert

    def done(self) -> bool:
        return self.inner.done()

    def _value(self) -> Any:
        raw = self.inner.result()
        return self._convert(raw) if self._convert else raw

    def __await__(self) -> Generator[Any, None, Any]:
        if not self.inner.done():
            if self.remote:
                self.owner.begin_await(self.index)
            try:
                yield from self.inner.__await__()
            finally:
                if self.remote:
                    self.owner.end_await(self.index)
        return self._value()


class JournalCallFuture(JournalFuture, CallFuture[Any]):
    """The result of a durable call; it knows the callee's invocation id."""

    __slots__ = ("_target_id",)

    def __init__(
        self,
        owner: AwaitTracker,
        inner: EntryFuture,
        index: int,
        target_id: str,
        convert: Callable[[str | None], Any],
    ) -> None:
        super().__init__(owner, inner, index, remote=True, convert=convert)
        self._target_id = target_id

    async def invocation_id(self) -> str:
        return self._target_id

    def cancel_invocation(self) -> Done:  # type: ignore[override]  # awaitable, eager
        self.owner.cancel_target(self._target_id)
        return Done()


class JournalSleepFuture(JournalFuture, SleepFuture):
    """A durable timer's future (``ctx.sleep``)."""

    __slots__ = ()
