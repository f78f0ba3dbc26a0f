"""Read-only SQL over the store, with the result as a table.

``GET /sql?sql=...`` runs one query (it changes nothing, so the URL can be shared and
bookmarked): the very checks of ``durable sql`` and ``POST /api/sql`` apply (one
SELECT over the store's tables, in a READ ONLY transaction, stopped after a time
limit, at most ``limit`` rows).
"""

from __future__ import annotations

from typing import Any

from durable.devtool.errors import RequestError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._core import Dashboard, small_int
from ._render import is_fragment_request

__all__ = ["routes"]

DEFAULT_SQL = (
    "SELECT status, count(*) AS invocations\nFROM invocations\nGROUP BY status\nORDER BY 2 DESC"
)
#: on a Restate cluster the query goes to Restate's own SQL, over its tables
RESTATE_SQL = (
    "SELECT status, count(*) AS invocations\nFROM sys_invocation\nGROUP BY status\nORDER BY 2 DESC"
)
RESTATE_TABLES = [
    "sys_invocation",
    "sys_journal",
    "state",
    "sys_promise",
    "sys_service",
    "sys_deployment",
    "sys_inbox",
    "sys_keyed_service_status",
    "sys_idempotency",
]
LIMITS = (100, 1000, 10000)


def routes(d: Dashboard) -> list[Route]:
    async def page(request: Request) -> Response:
        q = request.query_params
        text = q.get("sql")
        cluster = bool(d.info.get("cluster"))
        try:
            limit = small_int(q.get("limit"), 1000)
        except ValueError:
            limit = 1000
        limit = limit if limit in LIMITS else 1000
        ctx: dict[str, Any] = {
            "sql": text if text is not None else RESTATE_SQL if cluster else DEFAULT_SQL,
            "cluster": cluster,
            "limit": limit,
            "limits": LIMITS,
            "result": None,
            "error": None,
            "tables": RESTATE_TABLES
            if cluster
            else []
            if "sql" in d.source.unavailable
            else await d.source.tables(),
            "sql_off": d.source.unavailable.get("sql"),
        }
        status = 200
        if text:
            try:
                d.refuse("sql")
                ctx["result"] = await d.source.sql(text, limit)
            except RequestError as e:
                ctx["error"], status = e.message, e.status
        return d.render(request, "sql", ctx, 200 if is_fragment_request(request) else status)

    return [Route("/sql", page)]
