"""The admin API: JSON endpoints over the engine and the store, on 127.0.0.1:9070.

The dashboard's pages are mounted beside these routes; the CLI and TUI use only them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from . import admin_api
from .engine import Engine

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


def create_admin(engine: Engine, runtime_info: dict[str, Any]) -> Starlette:
    """The admin ASGI app, with the web dashboard mounted at ``/``."""
    from durable.dashboard import create_dashboard  # the one import back up: the pages

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

    return Starlette(
        routes=[
            # admin_api's routes come first: its /api/invocations/{id} and /api/services
            # (a superset of the two below) answer those paths.
            *admin_api.routes(engine.store, engine, runtime_info),
            Route("/api/invocations/{id}", invocation),
            Route("/health", health),
            Route("/api/health", health),
            Route("/api/services", services),
            admin_api.not_found_route,
            Mount("/", create_dashboard(engine, runtime_info)),  # the web dashboard
        ],
        exception_handlers={HTTPException: admin_api.http_error},
    )
