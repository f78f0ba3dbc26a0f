"""The admin API: JSON endpoints over the engine and the store, on 127.0.0.1:9070.

The dashboard's pages are mounted beside these routes; the CLI and TUI use only them.
Besides :mod:`.routes`' endpoints, a running runtime answers ``GET /health`` and
``GET /api/events?after=N``: its console lines (reload events, failures) numbered, see
:mod:`durable.devtool.events`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from ..engine import Engine
from ..events import EventLog
from ..hostguard import HostGuard, bind_host_of
from ..store import queries
from . import routes
from .views import app_error

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


def _values(raw: dict[str, str]) -> dict[str, Any]:
    return {name: json.loads(text) for name, text in sorted(raw.items())}


def create_admin(
    engine: Engine, runtime_info: dict[str, Any], events: EventLog | None = None
) -> Starlette:
    """The admin ASGI app, with the web dashboard mounted at ``/``."""
    from durable.dashboard import create_dashboard  # the one import back up: the pages

    events = events or EventLog()

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "degraded" if engine.store.degraded else "ok",
                "reason": engine.store.degraded,
                **runtime_info,
                "counts": engine.counts(),
                "waiting_clients": engine.waiting_clients(),
                "app_error": app_error(engine),
            }
        )

    def _state_target(request: Request) -> tuple[str, str] | JSONResponse:
        service, key = request.query_params.get("service"), request.query_params.get("key")
        if not service or key is None:
            return JSONResponse(
                {"code": 400, "message": "give ?service=NAME&key=KEY (URL-encoded)"},
                status_code=400,
            )
        return service, key

    async def state(request: Request) -> JSONResponse:
        """A key's state, or with ``&invocation=ID&entry=N`` the state as of that entry."""
        target = _state_target(request)
        if isinstance(target, JSONResponse):
            return target
        service, key = target
        inv_id, entry = request.query_params.get("invocation"), request.query_params.get("entry")
        await engine.store.write([])  # what was queued before this request is included
        if inv_id:
            if entry is None or not entry.isdigit():
                return JSONResponse(
                    {"code": 400, "message": "&invocation= needs &entry=N (a journal index)"},
                    status_code=400,
                )
            try:
                raw = await engine.store.read(queries.state_as_of, service, key, inv_id, int(entry))
            except LookupError as e:
                return JSONResponse({"code": 404, "message": str(e)}, status_code=404)
        else:
            raw = await engine.store.read(queries.state, service, key)
        return JSONResponse({"service": service, "key": key, "state": _values(raw)})

    async def state_history(request: Request) -> JSONResponse:
        target = _state_target(request)
        if isinstance(target, JSONResponse):
            return target
        service, key = target
        await engine.store.write([])
        changes = await engine.store.read(queries.state_history, service, key)
        return JSONResponse(
            {
                "service": service,
                "key": key,
                "changes": [
                    jsonable(
                        {
                            **dataclasses.asdict(c),
                            "value": json.loads(c.value) if c.value is not None else None,
                        }
                    )
                    for c in changes
                ],
            }
        )

    async def event_list(request: Request) -> JSONResponse:
        try:
            after = int(request.query_params.get("after") or 0)
            limit = int(request.query_params.get("limit") or 1000)
        except ValueError:
            return routes.json_error(400, "after and limit must be integers")
        return JSONResponse(events.since(after, limit))

    return Starlette(
        routes=[
            # the query-string forms used by the state tests; routes has the REST forms
            Route("/api/state", state),
            Route("/api/state-history", state_history),
            *routes.routes(engine.store, engine, runtime_info),
            Route("/health", health),
            Route("/api/health", health),
            Route("/api/events", event_list),
            routes.not_found_route,
            Mount("/", create_dashboard(engine, runtime_info)),  # the web dashboard
        ],
        middleware=[
            Middleware(HostGuard, bind_host=bind_host_of(str(runtime_info.get("admin_url") or "")))
        ],
        exception_handlers={HTTPException: routes.http_error},
    )
