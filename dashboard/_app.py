"""The dashboard's ASGI app: every page module's routes, the static files, the guard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durable.devtool.engine import Engine
from durable.devtool.errors import RequestError, StoreDegraded
from durable.devtool.hostguard import bind_host_of
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from . import awakeables, calltree, invocation, invocations, services, sql, state
from ._core import Dashboard
from ._reads import EngineSource
from ._render import STATIC_DIR, Renderer, fingerprint
from ._security import Guard
from ._source import Source, SourceUnreachable

__all__ = ["create_dashboard", "dashboard_app"]

NAV = [
    ("/invocations", "Invocations"),
    ("/awakeables", "Awakeables"),
    ("/state", "State"),
    ("/services", "Services"),
    ("/sql", "SQL"),
]


def create_dashboard(engine: Engine, info: Mapping[str, Any] | None = None) -> Starlette:
    """The web dashboard over ``engine`` (mounted at ``/`` of the admin server)."""
    info = dict(info or {})
    return dashboard_app(EngineSource(engine, info), bind_host_of(str(info.get("admin_url") or "")))


def dashboard_app(source: Source, bind_host: str = "127.0.0.1") -> Starlette:
    """The web dashboard over any :class:`~._source.Source` (``durable dashboard`` serves
    one over an admin API; ``bind_host``: the address it listens on, for the Host guard)."""
    info = source.header()
    renderer = Renderer(
        {
            "nav": NAV,
            "runtime": info,
            "store_degraded": source.store_degraded,
            "app_health": source.app_error,
            "outage": source.outage,
            "unavailable": source.unavailable,
            "fingerprint": fingerprint,
        }
    )
    d = Dashboard(source, renderer, info)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = "Not found" if exc.status_code == 404 else f"Error {exc.status_code}"
        message = f"no page at {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return d.render(request, "error", {"title": title, "message": message}, exc.status_code)

    async def store_degraded(request: Request, exc: Exception) -> Response:
        return d.render(request, "error", {"title": "Store degraded", "message": str(exc)}, 503)

    async def bad_request(request: Request, exc: Exception) -> Response:
        # a form the page modules could not read (not UTF-8, multipart, too big)
        assert isinstance(exc, RequestError)
        title = f"Error {exc.status}"
        return d.render(request, "error", {"title": title, "message": exc.message}, exc.status)

    async def unreachable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SourceUnreachable)
        title = "Not answering"
        return d.render(request, "error", {"title": title, "message": exc.message}, 503)

    return Starlette(
        routes=[
            *invocations.routes(d),
            *calltree.routes(d),
            *invocation.routes(d),
            *awakeables.routes(d),
            *state.routes(d),
            *services.routes(d),
            *sql.routes(d),
            Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
        ],
        middleware=[Middleware(Guard, bind_host=bind_host)],
        exception_handlers={
            HTTPException: http_error,
            StoreDegraded: store_degraded,
            RequestError: bad_request,
            SourceUnreachable: unreachable,
        },
    )
