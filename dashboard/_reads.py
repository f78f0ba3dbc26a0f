"""What the pages read, through the query module and the admin API's helpers.

The dashboard shows exactly what ``GET /api/...`` answers: the dicts come from
:mod:`durable.devtool.admin.views` (which overlays the live status that only the engine's
memory holds) and the rows from :mod:`durable.devtool.store.queries`. Queries run on
the store's reader threads, never on the event loop.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from durable import payloads
from durable.devtool.admin import views as inspect
from durable.devtool.engine import Engine
from durable.devtool.store import queries
from durable.devtool.store.queries import Cursor, InvocationFilter
from durable.messages import JournalEntry
from durable.payloads import AwakeablePayload, GetPromisePayload

__all__ = ["Reads"]

#: the most invocations a bulk action over a filter touches
MAX_BULK = 100_000


def _matching_ids(
    cur: Cursor, live: inspect.Live, f: InvocationFilter, cap: int
) -> tuple[list[str], bool]:
    """Ids of the invocations matching ``f`` (newest first), at most ``cap``; and
    whether there were more."""
    ids: list[str] = []
    after = None
    while len(ids) < cap:
        page = inspect.list_invocations(
            cur, live, f, after=after, limit=min(inspect.MAX_PAGE, cap - len(ids))
        )
        ids.extend(i["id"] for i in page["invocations"])
        after = page["next"]
        if after is None:
            return ids, False
    return ids, True


def _status_counts(
    cur: Cursor, live: inspect.Live, f: InvocationFilter | None = None
) -> dict[str, int]:
    stored = queries.status_counts_except(cur, list(live.rows), f)
    anyhow = dataclasses.replace(f, statuses=()) if f is not None else None
    for row in live.rows.values():
        if anyhow is None or anyhow.matches(row, row.status):
            stored[row.status] = stored.get(row.status, 0) + 1
    return stored


class Reads:
    """Reads over one engine's store, with its live overlay."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store

    def live(self, journal_of: str | None = None) -> inspect.Live:
        return inspect.Live.of(self.engine, journal_of)

    async def fresh(self) -> None:
        """Wait for queued writes to be committed (so they are readable)."""
        await self.store.write([])

    async def invocations(
        self,
        f: InvocationFilter,
        *,
        after: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """One page (newest first) with its cursors, as ``GET /api/invocations``."""
        await self.fresh()
        live = self.live()
        return await self.store.read(
            lambda cur: inspect.list_invocations(
                cur, live, f, after=after, before=before, limit=limit
            )
        )

    async def count(self, f: InvocationFilter) -> tuple[int, bool]:
        """How many match, and whether a text search stopped counting (a lower bound)."""
        live = self.live()
        page = await self.store.read(
            lambda cur: inspect.list_invocations(cur, live, f, limit=0, count=True)
        )
        return int(page["total"]), "total_since" in page

    async def status_counts(self, f: InvocationFilter | None = None) -> dict[str, int]:
        """Invocations per status; with ``f``, those its other fields match."""
        live = self.live()
        return await self.store.read(_status_counts, live, f)

    async def matching_ids(
        self, f: InvocationFilter, cap: int = MAX_BULK
    ) -> tuple[list[str], bool]:
        await self.fresh()
        live = self.live()
        return await self.store.read(_matching_ids, live, f, cap)

    async def invocation(self, inv_id: str) -> dict[str, Any] | None:
        """Everything about one invocation, as ``GET /api/invocations/{id}`` (no state)."""
        await self.fresh()
        return await self.store.read(inspect.show_invocation, self.live(inv_id), inv_id, False)

    async def state_step(self, service: str, key: str, inv_id: str, entry: int) -> dict[str, Any]:
        """What the time-travel slider shows at one entry: the state just after it and
        just before it (None at entry 0), the entry's kind, name and time."""
        await self.fresh()

        def read(cur: Cursor) -> dict[str, Any]:
            after = inspect.state(cur, service, key, inv_id, entry)["state"]
            before = inspect.state(cur, service, key, inv_id, entry - 1)["state"] if entry else None
            e = queries.journal_entries(cur, [(inv_id, entry)]).get((inv_id, entry))
            at = queries.entry_time(cur, inv_id, entry)
            return {
                "state": after,
                "before": before,
                "kind": e.kind.value if e else None,
                "name": e.name if e else None,
                "at": inspect.iso(at),
            }

        return await self.store.read(read)

    async def state(self, service: str, key: str) -> dict[str, Any]:
        await self.fresh()
        return await self.store.read(inspect.state, service, key)

    async def state_keys(self, service: str) -> dict[str, Any]:
        await self.fresh()
        return await self.store.read(inspect.state_keys, service)

    async def pending(self) -> dict[str, Any]:
        """Pending awakeables and workflow promises, each with its journal entry."""
        await self.fresh()
        live = self.live()

        def read(cur: Cursor) -> dict[str, Any]:
            out = inspect.pending(cur, live)
            pairs = [(p["invocation_id"], p["entry_index"]) for k in out.values() for p in k]
            entries = queries.journal_entries(cur, pairs)
            for items in out.values():
                for p in items:
                    e = entries.get((p["invocation_id"], p["entry_index"]))
                    p["schema"] = _schema_of(e)
            return out

        return await self.store.read(read)

    async def tables(self) -> list[str]:
        return await self.store.read(queries.table_names)


def _schema_of(e: JournalEntry | None) -> dict | None:
    """The expected value's JSON schema an awakeable or promise entry records, if any."""
    try:
        p = payloads.decode(e.kind, e.payload) if e is not None else None
    except ValueError:  # not a JSON object: no form hint
        return None
    schema = p.schema if isinstance(p, AwakeablePayload | GetPromisePayload) else None
    return schema if isinstance(schema, dict) else None
