"""The engine source: the pages' reads and actions in-process, over the runtime's engine.

The dashboard shows exactly what ``GET /api/...`` answers: the dicts come from
:mod:`durable.devtool.admin.views` (which overlays the live status that only the engine's
memory holds) and the rows from :mod:`durable.devtool.store.queries`; actions are the
admin API's (:mod:`durable.devtool.admin.actions`). Queries run on the store's reader
threads, never on the event loop. See :mod:`._source` for the interface.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

import duckdb
from durable.devtool.admin import actions
from durable.devtool.admin import tree as call_tree
from durable.devtool.admin import views as inspect
from durable.devtool.admin.filters import parse_filter
from durable.devtool.engine import Engine
from durable.devtool.errors import BadRequest
from durable.devtool.store import queries
from durable.devtool.store.queries import Cursor, InvocationFilter
from durable.devtool.store.readonly import SqlRefused, run_query
from durable.messages import Failure

from ._source import Invoked, ServicesView

__all__ = ["EngineSource", "MAX_BULK"]

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


SQL_TIMEOUT_S = 10.0


class EngineSource:
    """Reads over one engine's store, with its live overlay, and its actions."""

    unavailable: Mapping[str, str] = {}

    def __init__(self, engine: Engine, info: Mapping[str, Any] | None = None) -> None:
        self.engine = engine
        self.store = engine.store
        self.info = dict(info or {})

    def header(self) -> Mapping[str, Any]:
        return self.info

    def app_error(self) -> dict[str, Any] | None:
        return inspect.app_error(self.engine)

    def outage(self) -> str | None:
        return None

    def store_degraded(self) -> str | None:
        return self.store.degraded

    async def check(self) -> None:
        return None

    async def services(self) -> ServicesView:
        e = self.engine
        return ServicesView(
            sorted(e.services.values(), key=lambda s: s.name),
            e.service_unavailable,
            e.link is not None,
            self.info.get("ingress_url"),
        )

    def live(self, journal_of: str | None = None) -> inspect.Live:
        return inspect.Live.of(self.engine, journal_of)

    async def fresh(self) -> None:
        """Wait for queued writes to be committed (so they are readable)."""
        await self.store.write([])

    async def invocations(
        self,
        filters: Mapping[str, str],
        *,
        after: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """One page (newest first) with its cursors, as ``GET /api/invocations``."""
        f = parse_filter(filters)
        await self.fresh()
        live = self.live()
        return await self.store.read(
            lambda cur: inspect.list_invocations(
                cur, live, f, after=after, before=before, limit=limit
            )
        )

    async def count(self, filters: Mapping[str, str]) -> tuple[int, bool]:
        """How many match, and whether a text search stopped counting (a lower bound)."""
        f = parse_filter(filters)
        live = self.live()
        page = await self.store.read(
            lambda cur: inspect.list_invocations(cur, live, f, limit=0, count=True)
        )
        return int(page["total"]), "total_since" in page

    async def status_counts(self, filters: Mapping[str, str] | None = None) -> dict[str, int]:
        """Invocations per status; with ``filters``, those its other fields match."""
        f = parse_filter(filters) if filters is not None else None
        live = self.live()
        return await self.store.read(_status_counts, live, f)

    async def matching_ids(
        self, filters: Mapping[str, str], cap: int = MAX_BULK
    ) -> tuple[list[str], bool]:
        f = parse_filter(filters)
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
        """Pending awakeables and workflow promises, each with its expected schema."""
        await self.fresh()
        return await self.store.read(inspect.pending_with_schemas, self.live())

    async def tree(self, inv_id: str, limit: int) -> dict[str, Any] | None:
        await self.fresh()
        return await self.store.read(call_tree.call_tree, self.live(), inv_id, limit)

    async def tables(self) -> list[str]:
        return await self.store.read(queries.table_names)

    async def sql(self, text: str, limit: int) -> dict[str, Any]:
        """One read-only query (the checks of ``POST /api/sql``); BadRequest says why not."""
        await self.fresh()
        try:
            return await asyncio.to_thread(
                self.store.read_sync, run_query, text, limit, SQL_TIMEOUT_S
            )
        except (SqlRefused, TimeoutError) as e:
            raise BadRequest(str(e)) from None
        except duckdb.Error as e:
            raise BadRequest(f"the query failed: {e}") from None

    # -- actions
    async def act(self, action: str, inv_id: str) -> dict[str, Any]:
        return await actions.act(self.engine, action, inv_id)

    async def restart(self, inv_id: str, entry: int, kill: bool) -> dict[str, Any]:
        return await actions.restart(self.engine, inv_id, entry, kill)

    async def replay(self, inv_id: str) -> dict[str, Any]:
        return await actions.replay(self.engine, inv_id)

    async def bulk(self, action: str, ids: list[str]) -> dict[str, Any]:
        return await actions.bulk(self.engine, action, ids)

    async def resolve_awakeable(self, awk_id: str, value_json: str) -> dict[str, Any]:
        return await actions.resolve_awakeable(self.engine, awk_id, value_json)

    async def reject_awakeable(self, awk_id: str, message: str, code: int) -> dict[str, Any]:
        return await actions.reject_awakeable(self.engine, awk_id, message, code)

    async def complete_promise(
        self,
        service: str,
        key: str,
        name: str,
        value_json: str | None = None,
        failure: Failure | None = None,
    ) -> dict[str, Any]:
        return await actions.complete_promise(
            self.engine, service, key, name, value_json, failure=failure
        )

    async def set_state(
        self, service: str, key: str, name: str, value_json: str | None
    ) -> dict[str, Any]:
        return await actions.set_state(self.engine, service, key, name, value_json)

    async def invoke(
        self,
        service: str,
        handler: str,
        key: str | None,
        body: bytes,
        idempotency_key: str | None,
        delay: float,
        send: bool,
        wait_s: float,
    ) -> Invoked:
        inv_id, existing = await self.engine.submit(
            service,
            handler,
            key,
            body.decode("utf-8"),
            {"x-durable-source": "dashboard", "content-type": "application/json"},
            idempotency_key,
            delay,
            durable_ack=True,
        )
        if send:
            return Invoked(inv_id, existing)
        try:
            outcome = await asyncio.wait_for(self.engine.output(inv_id, wait=True), wait_s)
        except TimeoutError:
            outcome = None
        if outcome is None:
            return Invoked(inv_id, existing)
        return Invoked(
            inv_id,
            existing,
            outcome.status,
            inspect.parse_json(outcome.output),
            outcome.failure,
            done=True,
        )
