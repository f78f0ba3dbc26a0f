"""durable's futures over restate-sdk's, and errors translated both ways.

A :class:`ServeFuture` wraps a restate future whose value is raw bytes (every restate
call here uses a pass-through serde) and converts it with durable's serde when awaited;
a restate ``TerminalError`` becomes durable's (409 ``cancelled``: ``CancelledError``).
:class:`Waits` is the futures' owner: the combinators of :mod:`durable.combinators` ask
it to wait, and it asks restate's ``restate.asyncio``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any

from durable import serde as _serde
from durable.context import CallFuture, DurableFuture, SendHandle, SleepFuture
from durable.exceptions import CancelledError, RetryableError, TerminalError
from restate import asyncio as restate_asyncio
from restate.exceptions import RetryableError as RRetryableError
from restate.exceptions import TerminalError as RTerminalError
from restate.server_context import restate_context_is_replaying

__all__ = [
    "ServeFuture",
    "ServeCallFuture",
    "ServeSleepFuture",
    "ServeSendHandle",
    "Waits",
    "to_durable",
    "to_restate",
    "text",
    "encode",
    "decode",
]


def to_durable(e: RTerminalError) -> TerminalError:
    """The durable error a handler sees for restate's terminal error ``e``."""
    if e.status_code == 409 and e.message.startswith("cancelled"):
        return CancelledError(e.message)
    return TerminalError(e.message, e.status_code, e.metadata)


def to_restate(e: BaseException) -> BaseException:
    """The restate error that carries durable's ``e`` (others: ``e`` itself)."""
    if isinstance(e, TerminalError):
        return RTerminalError(e.message, e.status_code, e.metadata)
    if isinstance(e, RetryableError):
        return RRetryableError(e.message, e.status_code, e.retry_after)
    return e


def text(raw: bytes | None) -> str | None:
    """Raw bytes from restate as the JSON text durable's serde reads (None: no value)."""
    if raw is None or raw == b"":
        return None
    return bytes(raw).decode()


def encode(serde: Any, value: Any) -> bytes:
    """``value`` through a durable (or restate) serde, as the bytes restate carries."""
    out = serde.serialize(value)
    return out.encode() if isinstance(out, str) else bytes(out)


def decode(serde: Any, raw: bytes | None) -> Any:
    """What ``serde`` makes of bytes from restate: durable's JSON serdes read text (None
    when there is none), others (``BytesSerde`` too) get the bytes, as under restate-sdk."""
    if isinstance(serde, _serde.JsonSerde):
        return serde.deserialize(text(raw))
    return serde.deserialize(b"" if raw is None else bytes(raw))


def _await(inner: Any) -> Generator[Any, None, Any]:
    try:
        return (yield from inner.__await__())
    except RTerminalError as e:
        raise to_durable(e) from None


class ServeFuture(DurableFuture[Any]):
    """A restate future seen as a durable one (``await``, ``done``, combinators).

    Attributes:
        owner: The invocation's :class:`Waits` (what the combinators ask).
        inner: restate's future.
    """

    __slots__ = ("owner", "inner", "_convert")

    def __init__(self, owner: Waits, inner: Any, convert: Callable[[bytes | None], Any]) -> None:
        self.owner = owner
        self.inner = inner
        self._convert = convert

    def done(self) -> bool:
        return bool(self.inner.is_completed())

    def __await__(self) -> Generator[Any, None, Any]:
        raw = yield from _await(self.inner)
        return self._convert(raw)


class ServeCallFuture(ServeFuture, CallFuture[Any]):
    """A call's future: also the callee's invocation id, and cancelling it."""

    __slots__ = ()

    async def invocation_id(self) -> str:
        return str(await self.inner.invocation_id())

    async def cancel_invocation(self) -> None:
        await self.inner.cancel_invocation()


class ServeSleepFuture(ServeFuture, SleepFuture):
    """A durable timer (``ctx.sleep``) on restate's."""

    __slots__ = ()


class ServeSendHandle(SendHandle):
    """A one-way send's handle (restate's, both methods awaited)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def invocation_id(self) -> str:
        return str(await _Awaiting(self._inner.invocation_id()))

    async def cancel_invocation(self) -> None:
        await _Awaiting(self._inner.cancel_invocation())


class _Awaiting:
    """An awaitable whose restate terminal errors come out as durable's."""

    __slots__ = ("inner",)

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __await__(self) -> Generator[Any, None, Any]:
        return (yield from _await(self.inner))


def _none(_raw: bytes | None) -> None:
    return None


class Waits:
    """One invocation's futures' owner: what durable's combinators and logger ask."""

    def __init__(self, rctx: Any) -> None:
        self.rctx = rctx
        self.ctx: Any = None  # the ServeContext, for durable.context_impl.current_context

    @property
    def replaying(self) -> bool:
        """Whether restate replays the journal now (``durable.getLogger()`` is quiet)."""
        return bool(restate_context_is_replaying.get())

    async def gather(self, futures: list[ServeFuture]) -> None:
        await _Awaiting(restate_asyncio.gather(*[f.inner for f in futures]))

    async def wait_completed(
        self, futures: list[ServeFuture], mode: str
    ) -> tuple[list[ServeFuture], list[ServeFuture]]:
        by_inner = {id(f.inner): f for f in futures}
        done, pending = await _Awaiting(restate_asyncio.wait_completed(*[f.inner for f in futures]))
        return [by_inner[id(f)] for f in done], [by_inner[id(f)] for f in pending]

    def sleep(self, delta: timedelta, name: str | None = None) -> ServeSleepFuture:
        return ServeSleepFuture(self, self.rctx.sleep(delta, name), _none)
