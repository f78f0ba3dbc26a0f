"""Which invocations the engine holds in memory, and bringing suspended ones back.

Running, ready, pending, scheduled, backing-off and paused invocations are held whole
(:class:`~.model.Active`: row, and journal once read). A suspended one is only the
tuple of entry indexes it waits on; the most recently suspended are also kept whole
("parked", bounded), so that a short wait wakes without reading them back. The others
are read back when a completion wakes them, in batches: a restart wakes hundreds at once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from durable.messages import EntryKind, Failure
from durable.payloads import AwakeablePayload

from ..store import Store, queries
from ..store.ops import PutInvocation
from .model import Active

__all__ = ["Residency"]

_BATCH = 500


class Residency:
    def __init__(self, store: Store, spawn: Callable[[Any], asyncio.Task], parked_limit: int):
        self.store = store
        self._spawn = spawn
        self.parked_limit = parked_limit
        self.inv: dict[str, Active] = {}
        self.suspended: dict[str, tuple[int, ...]] = {}  # what each waits on (a tuple: small)
        # completions that arrived while an invocation is read back: applied to what is read
        self.loading: dict[str, list[tuple[int, str | None, Failure | None]]] = {}
        # The most recently suspended invocations, kept whole (bounded): load takes them
        # from here instead of the store. Code that changes a suspended invocation's row
        # or journal must bring it in with load first (or drop it from here).
        self.parked: OrderedDict[str, Active] = OrderedDict()
        self.suspending: dict[str, asyncio.Future] = {}  # suspension writes in flight
        # awakeables of the invocations held in memory (running or parked): id -> entry
        self.awakeables: dict[str, tuple[str, int]] = {}
        self._load_batch: dict[str, asyncio.Future] = {}

    def knows(self, inv_id: str) -> bool:
        """Whether the invocation is not finished (held, suspended or being read back)."""
        return inv_id in self.inv or inv_id in self.suspended or inv_id in self.loading

    def park(self, a: Active, waiting_on: tuple[int, ...]) -> None:
        """A suspended invocation leaves the active set; its row is written."""
        inv_id = a.row.id
        self.suspended[inv_id] = waiting_on
        del self.inv[inv_id]
        a.link = None
        self.parked[inv_id] = a
        if len(self.parked) > self.parked_limit:
            self.forget_awakeables(self.parked.popitem(last=False)[1])
        # what load reads back must be committed first: remember the write until then
        self.suspending[inv_id] = fut = self.store.write([PutInvocation(a.row)])
        fut.add_done_callback(
            lambda f: self.suspending.get(inv_id) is f and self.suspending.pop(inv_id)
        )

    def forget_awakeables(self, a: Active) -> None:
        for e in a.journal or ():
            if e.kind is EntryKind.AWAKEABLE:
                self.awakeables.pop(AwakeablePayload.from_json(e.payload).id, None)

    async def load(self, inv_id: str) -> Active | None:
        """Bring a suspended invocation back into memory (row and journal)."""
        a = self.inv.get(inv_id)
        if a is not None:
            return a
        if inv_id in self.loading:
            while inv_id in self.loading:
                await asyncio.sleep(0.001)
            return self.inv.get(inv_id)
        if inv_id not in self.suspended:
            return None
        a = self.parked.pop(inv_id, None)
        if a is not None:
            del self.suspended[inv_id]
            self.inv[inv_id] = a
            return a
        self.loading[inv_id] = []
        try:
            pending = self.suspending.get(inv_id)
            if pending is not None:
                await asyncio.shield(pending)
            found = await self._read_batched(inv_id)
            if found is None:
                return None
            row, journal, order = found
            for index, result, failure in self.loading[inv_id]:
                if index < len(journal) and not journal[index].completed:
                    journal[index] = replace(
                        journal[index], result=result, failure=failure, completed=True
                    )
                    order.append(index)
            self.suspended.pop(inv_id, None)
            a = Active(row, journal, order=order)
            self.inv[inv_id] = a
            return a
        finally:
            self.loading.pop(inv_id, None)

    def _read_batched(self, inv_id: str) -> asyncio.Future:
        """Row, journal and completion order of a suspended invocation; the reads asked
        for in one loop turn share two queries."""
        fut = self._load_batch.get(inv_id)
        if fut is None:
            fut = self._load_batch[inv_id] = asyncio.get_running_loop().create_future()
            if len(self._load_batch) == 1:
                asyncio.get_running_loop().call_soon(self._flush_loads)
        return fut

    def _flush_loads(self) -> None:
        batch, self._load_batch = self._load_batch, {}
        ids = list(batch)
        for i in range(0, len(ids), _BATCH):
            self._spawn(self._run_loads({k: batch[k] for k in ids[i : i + _BATCH]}))

    async def _run_loads(self, batch: dict[str, asyncio.Future]) -> None:
        try:
            found = await self.store.read(queries.invocations_with_journals, list(batch))
        except Exception as e:
            for fut in batch.values():
                if not fut.done():
                    fut.set_exception(e)
            return
        for inv_id, fut in batch.items():
            if not fut.done():
                fut.set_result(found.get(inv_id))
