"""Combinators over durable awaitables: gather, select, wait_completed, as_completed,
with_timeout.

Names and shapes follow restate-sdk-python (``select`` returns ``[name, value]``). They
are deterministic on replay: whenever a combinator decides which futures are done
(``select``, ``wait_completed``, ``as_completed``, ``with_timeout``) it journals the
decision as a ``combinator`` entry, and a replay returns the recorded outcome even if
more futures have completed by then. ``gather`` waits for all, so it records nothing.
Every future must come from the same invocation's context. The futures' owner (their
``owner`` attribute) does the waiting: the executor under ``durable dev``, or any
:class:`~durable.futures.FutureOwner` (``durable serve``'s adapter over restate-sdk).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, TypeVar, cast

from .context import DurableFuture
from .exceptions import DurableTimeoutError, InvalidUsageError
from .executor import Executor
from .futures import FutureOwner

__all__ = ["gather", "select", "wait_completed", "as_completed", "with_timeout"]

T = TypeVar("T")


def _executor(futures: tuple[Any, ...] | list[Any]) -> tuple[FutureOwner, list[Any]]:
    """The owner the futures belong to, and the futures, checked to all be its own."""
    ex = getattr(futures[0], "owner", None)
    if not isinstance(ex, Executor) and not isinstance(ex, FutureOwner):
        raise TypeError(
            f"durable combinators take durable futures (ctx.run, ctx.sleep, calls, "
            f"awakeables...), not {type(futures[0]).__name__}"
        )
    for f in futures:
        if not isinstance(f, DurableFuture) or getattr(f, "owner", None) is not ex:
            raise InvalidUsageError(
                "durable combinators take durable futures of this invocation (from "
                f"ctx.run, ctx.sleep, calls, awakeables...), not {type(f).__name__}"
            )
    return cast(FutureOwner, ex), list(futures)


async def gather(*futures: DurableFuture[Any]) -> list[DurableFuture[Any]]:
    """Wait until every future is done (success or failure); returns them in order.

    Example::

        a, b = await durable.gather(ctx.service_call(f, 1), ctx.service_call(g, 2))
        total = await a + await b
    """
    if not futures:
        return []
    ex, own = _executor(futures)
    await ex.gather(own)
    return list(futures)


async def wait_completed(
    *futures: DurableFuture[Any],
) -> tuple[list[DurableFuture[Any]], list[DurableFuture[Any]]]:
    """Wait until at least one future is done; returns ``(done, pending)``.

    ``done`` lists the completed futures in the order they completed (replays return the
    same lists).
    """
    if not futures:
        return [], []
    ex, own = _executor(futures)
    done, pending = await ex.wait_completed(own, "wait_completed")
    return list(done), list(pending)


async def select(**futures: DurableFuture[Any]) -> list[Any]:
    """Wait for the first future to complete; returns ``[name, value]``.

    The first to complete wins (also on replay, whatever completed since). A failed
    winner raises its error. Example::

        match await durable.select(paid=ctx.run("pay", pay), timeout=ctx.sleep(timedelta(seconds=5))):
            case ["paid", receipt]: ...
            case ["timeout", _]: ...
    """
    if not futures:
        raise TypeError("select() needs at least one future, given by name")
    names = list(futures)
    ex, own = _executor(list(futures.values()))
    done, _ = await ex.wait_completed(own, "select")
    winner = done[0]
    name = next(n for n, f in zip(names, own, strict=True) if f is winner)
    return [name, await winner]


async def as_completed(*futures: DurableFuture[Any]) -> AsyncIterator[DurableFuture[Any]]:
    """Yield futures as they complete (in completion order, the same on replay)."""
    if not futures:
        return
    ex, pending = _executor(futures)
    while pending:
        done, pending = await ex.wait_completed(pending, "as_completed")
        for f in done:
            yield f


async def with_timeout(future: DurableFuture[T], timeout: timedelta) -> T:
    """Await ``future``, or raise :class:`~durable.exceptions.DurableTimeoutError` (a
    ``TerminalError``, status 408) if it is not done within ``timeout``.

    The timeout is a durable timer (``ctx.sleep``) raced against the future, like
    ``orTimeout`` in Restate's TypeScript SDK and ``withTimeout`` in its Kotlin SDK, so
    it holds across suspensions and restarts. The awaited operation is not cancelled.
    Also available as ``future.with_timeout(timeout)``. Example::

        try:
            approved = await durable.with_timeout(approval, timedelta(days=3))
        except durable.DurableTimeoutError:
            approved = False
    """
    ex, [own] = _executor([future])
    timer = ex.sleep(timeout)
    done, _ = await ex.wait_completed([own, timer], "with_timeout")
    if done[0] is own:
        return await future  # own, as the future's own type
    await timer  # a cancelled invocation's timer raises the cancellation, not a timeout
    index = getattr(timer, "index", None)
    entry = f", entry {index}" if index is not None else ""
    raise DurableTimeoutError(f"timed out after {timeout} (durable timer{entry})")
