"""Who waits for an invocation's outcome, and answering them when it ends.

Waiters are callers over HTTP (attach, a request/response call) holding a future;
attachers are journal entries of other invocations (``attach_invocation``, a call to
an invocation that already existed) completed with the outcome.
"""

from __future__ import annotations

import asyncio

from durable.ids import is_invocation_id

from ..errors import BadRequest, NotFound
from ..lifecycle import TERMINAL
from ..store import Store, queries
from .model import Outcome, outcome_of
from .residency import Residency

__all__ = ["Outputs"]


class Outputs:
    def __init__(self, store: Store, residency: Residency) -> None:
        self.store = store
        self.residency = residency
        self.waiters: dict[str, list[asyncio.Future]] = {}
        self.attachers: dict[str, list[tuple[str, int]]] = {}

    def waiter(self, inv_id: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(inv_id, []).append(fut)
        return fut

    def drop_waiter(self, inv_id: str, fut: asyncio.Future) -> None:
        """Forget a waiter whose client went away."""
        waiting = self.waiters.get(inv_id)
        if waiting is not None and fut in waiting:
            waiting.remove(fut)
            if not waiting:
                del self.waiters[inv_id]

    def attach(self, target: str, inv_id: str, index: int) -> None:
        """Complete entry ``index`` of ``inv_id`` with ``target``'s outcome when it ends."""
        self.attachers.setdefault(target, []).append((inv_id, index))

    def answer(self, outcome: Outcome) -> list[tuple[str, int]]:
        """Answer the waiting callers; returns the entries attached to the outcome (the
        engine completes them)."""
        for fut in self.waiters.pop(outcome.invocation_id, []):
            if not fut.done():
                fut.set_result(outcome)
        return self.attachers.pop(outcome.invocation_id, [])

    def waiting_clients(self) -> int:
        return sum(len(w) for w in self.waiters.values())

    async def outcome_if_done(self, inv_id: str) -> Outcome | None:
        if self.residency.knows(inv_id):
            return None
        row = await self.store.read(queries.invocation, inv_id)
        if row is None or row.status not in TERMINAL:
            return None
        return outcome_of(row)

    async def outcome_or_waiter(
        self, inv_id: str, wait: bool
    ) -> Outcome | None | asyncio.Future[Outcome]:
        """The outcome if the invocation ended; else, with ``wait``, a future of it."""
        if not is_invocation_id(inv_id):
            raise BadRequest(
                f"malformed invocation id {inv_id!r}: ids look like inv_ + 26 characters"
            )
        if self.residency.knows(inv_id):
            return self.waiter(inv_id) if wait else None
        row = await self.store.read(queries.invocation, inv_id)
        if row is None:
            await self.store.write([])
            row = await self.store.read(queries.invocation, inv_id)
            if row is None:
                raise NotFound(f"unknown invocation {inv_id}")
        if row.status not in TERMINAL:
            # between states (e.g. being loaded): wait in memory
            return self.waiter(inv_id) if wait else None
        return outcome_of(row)
