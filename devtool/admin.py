"""The admin API: JSON endpoints over the engine and the store, on 127.0.0.1:9070.

The dashboard's pages are mounted beside these routes; the CLI and TUI use only them.
Besides :mod:`admin_api`'s endpoints, a running runtime answers ``GET /health`` and
``GET /api/events?after=N``: its console lines (reload events, failures) numbered, see
:mod:`durable.devtool.events`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import admin_api
from .engine import Engine
from .events import EventLog

__all__ = ["create_admin", "jsonable"]


def jsonable(value: Any) -> Any:
    """Datetimes as ISO text (UTC), the rest unchanged."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat() + "Z"
    return value


def create_admin(
    engine: Engine, runtime_info: dict[str, Any], events: EventLog | None = None
) -> Starlette:
    """The admin ASGI app."""
    events = events or EventLog()

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", **runtime_info, "counts": engine.counts()})

    async def services(_request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "services": [dataclasses.asdict(s) for s in engine.services.values()],
                "error": engine.service_unavailable,
            }
        )

    async def invocation(request: Request) -> JSONResponse:
        inv_id = request.path_params["id"]
        row = await engine.row(inv_id)
        if row is None:
            return JSONResponse(
                {"code": 404, "message": f"unknown invocation {inv_id}"}, status_code=404
            )
        return JSONResponse(jsonable(dataclasses.asdict(row)))

    async def event_list(request: Request) -> JSONResponse:
        try:
            after = int(request.query_params.get("after") or 0)
            limit = int(request.query_params.get("limit") or 1000)
        except ValueError:
            return admin_api.json_error(400, "after and limit must be integers")
        return JSONResponse(events.since(after, limit))

    return Starlette(
        routes=[
            # admin_api's routes come first: its /api/invocations/{id} and /api/services
            # (a superset of the two below) answer those paths.
            *admin_api.routes(engine.store, engine, runtime_info),
            Route("/api/invocations/{id}", invocation),
            Route("/health", health),
            Route("/api/health", health),
            Route("/api/services", services),
            Route("/api/events", event_list),
            admin_api.not_found_route,
        ],
        exception_handlers={HTTPException: admin_api.http_error},
    )
