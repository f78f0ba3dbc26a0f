"""The admin API: JSON endpoints over the engine and the store, on 127.0.0.1:9070.

The dashboard's pages are mounted beside these routes; the CLI and TUI use only them.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .engine import Engine
from .errors import IngressError
from .lifecycle import IllegalTransition

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
    """The admin ASGI app."""

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

    async def act(request: Request) -> JSONResponse:
        """POST /api/invocations/{id}/cancel (the handler may compensate) or /kill."""
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return JSONResponse(
                {"code": 403, "message": "cross-origin requests may not act on invocations"},
                status_code=403,
            )
        inv_id, action = request.path_params["id"], request.url.path.rsplit("/", 1)[1]
        try:
            status = await (engine.cancel if action == "cancel" else engine.kill)(inv_id)
        except IngressError as e:
            return JSONResponse({"code": e.status, "message": e.message}, status_code=e.status)
        except IllegalTransition as e:
            return JSONResponse({"code": 409, "message": str(e)}, status_code=409)
        return JSONResponse({"id": inv_id, "status": status})

    return Starlette(
        routes=[
            Route("/api/invocations/{id}/cancel", act, methods=["POST"]),
            Route("/api/invocations/{id}/kill", act, methods=["POST"]),
            Route("/api/invocations/{id}", invocation),
            Route("/health", health),
            Route("/api/health", health),
            Route("/api/services", services),
        ]
    )
