"""Combinators over durable awaitables: gather, select, wait_completed, as_completed.

Names and shapes follow restate-sdk-python (``select`` returns ``[name, value]``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from .context import DurableFuture

__all__ = ["gather", "select", "wait_completed", "as_completed"]


async def _settle(fut: DurableFuture[Any]) -> DurableFuture[Any]:
    try:
        await fut
    except Exception:
        pass
    return fut


async def gather(*futures: DurableFuture[Any]) -> list[DurableFuture[Any]]:
    """Wait until every future is done (success or failure); returns them in order."""
    await asyncio.gather(*(_settle(f) for f in futures))
    return list(futures)


async def wait_completed(
    *futures: DurableFuture[Any],
) -> tuple[list[DurableFuture[Any]], list[DurableFuture[Any]]]:
    """Wait until at least one future is done; returns ``(done, pending)``."""
    if not any(f.done() for f in futures):
        tasks = [asyncio.ensure_future(_settle(f)) for f in futures]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    done = [f for f in futures if f.done()]
    return done, [f for f in futures if not f.done()]


async def select(**futures: DurableFuture[Any]) -> list[Any]:
    """Wait for the first future to complete; returns ``[name, value]``.

    A failed winner raises its error. Example::

        match await durable.select(paid=ctx.run("pay", pay), timeout=ctx.sleep(timedelta(s=5))):
            case ["paid", receipt]: ...
            case ["timeout", _]: ...
    """
    names = list(futures)
    done, _ = await wait_completed(*futures.values())
    for name in names:
        f = futures[name]
        if f in done:
            return [name, await f]
    raise AssertionError("wait_completed returned no completed future")


async def as_completed(*futures: DurableFuture[Any]) -> AsyncIterator[DurableFuture[Any]]:
    """Yield futures as they complete."""
    pending = list(futures)
    while pending:
        done, pending = await wait_completed(*pending)
        for f in done:
            yield f
