"""`durable dashboard`: the web dashboard alone, over a Restate cluster or a runtime elsewhere.

``--restate URL`` (or ``DURABLE_RESTATE_URL``) looks at a Restate cluster through
:func:`durable.devtool.cluster.cluster_app`, in this process, over
``httpx.ASGITransport``; ``--url URL`` at a durable runtime's admin API over HTTP. No
local runtime starts. The pages are served by uvicorn on 127.0.0.1 (``--host``, with
the same guard as ``durable dev``'s dashboard); their actions go to what they look at.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Annotated, Any

import httpx
import typer

from ._common import RestateOpt, UrlOpt, err, fail

__all__ = ["dashboard", "cluster_transport", "check_cluster", "check_runtime"]

_CHECK_TIMEOUT_S = 5.0


class _ClusterTransport(httpx.ASGITransport):
    """``cluster_app`` in-process; closing it closes its client of Restate's API (no
    lifespan runs under an ASGI transport)."""

    async def aclose(self) -> None:
        await self.app.state.restate.close()  # type: ignore[attr-defined]


def cluster_transport(restate_url: str) -> httpx.AsyncBaseTransport:
    """durable's admin API over the Restate cluster at ``restate_url``, in this process
    (one client of Restate's API per transport: close it with the httpx client)."""
    from ..client import RESTATE_INGRESS_ENV
    from ..cluster.app import cluster_app

    ingress = os.environ.get(RESTATE_INGRESS_ENV) or None
    return _ClusterTransport(app=cluster_app(restate_url, ingress))


async def _health(url: str, transport: httpx.AsyncBaseTransport | None) -> Any:
    async with httpx.AsyncClient(
        base_url=url, transport=transport, timeout=_CHECK_TIMEOUT_S
    ) as http:
        r = await http.get("/health")
    try:
        body = r.json()
    except ValueError:
        body = None
    return r.status_code, body


async def check_cluster(restate_url: str, transport: httpx.AsyncBaseTransport) -> dict[str, Any]:
    """The cluster's health (``restate_version``...); a :class:`RuntimeError` that says
    what to do when it does not answer."""
    try:
        status, body = await _health(restate_url, transport)
    except httpx.HTTPError as e:
        status, body = 0, {"message": str(e) or type(e).__name__}
    if status == 200 and isinstance(body, dict) and body.get("status") == "ok":
        return body
    why = body.get("message") if isinstance(body, dict) else None
    if why:  # the backend's own words say what to check
        raise RuntimeError(f"cannot reach the Restate cluster at {restate_url}: {why}")
    raise RuntimeError(
        f"cannot reach the Restate cluster at {restate_url} (HTTP {status}); check the URL "
        "(Restate's admin API, port 9070 by default) and that the cluster is up"
    )


async def check_runtime(url: str) -> dict[str, Any]:
    """A durable runtime's health; RuntimeError (what to do) when it does not answer."""
    try:
        status, body = await _health(url, None)
    except httpx.HTTPError as e:
        raise RuntimeError(
            f"cannot reach a durable runtime at {url}: {e or type(e).__name__}; start one "
            "with `durable dev` or give its admin URL with --url"
        ) from None
    if status != 200 or not isinstance(body, dict):
        raise RuntimeError(
            f"{url}/health answered HTTP {status}: is {url} the admin API of a durable runtime "
            "(`durable dev` prints it as 'admin')?"
        )
    return body


def _pick(restate: str | None, url: str | None) -> tuple[str, bool]:
    if restate and url:  # DURABLE_URL may be exported: the cluster asked for wins
        err.print(f"[durable] --restate given: not using --url/DURABLE_URL {url}", markup=False)
        url = None
    if not restate and not url:
        fail(
            "give the Restate cluster to look at: --restate http://HOST:9070 (or set "
            "DURABLE_RESTATE_URL); for a durable runtime elsewhere, --url http://HOST:9070"
        )
    target = (restate or url or "").rstrip("/")
    if not target.startswith(("http://", "https://")):
        fail(f"{target!r} is not an http(s) URL: give one like http://127.0.0.1:9070")
    return target, bool(restate)


def dashboard(
    restate: RestateOpt = None,
    url: UrlOpt = None,
    port: Annotated[
        int, typer.Option("--port", help="Port of the dashboard.", min=0, max=65535)
    ] = 9071,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (keep it 127.0.0.1).")
    ] = "127.0.0.1",
) -> None:
    """The web dashboard alone, over a Restate cluster (--restate) or a runtime (--url)."""
    target, cluster = _pick(restate, url)
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        fail(f"cannot listen on {host}:{port} ({e.strerror or e}): pick another with --port")
    try:
        asyncio.run(_serve(target, cluster, sock, host))
    except RuntimeError as e:
        fail(str(e))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


async def _serve(target: str, cluster: bool, sock: socket.socket, host: str) -> None:
    import uvicorn
    from durable.dashboard import dashboard_app
    from durable.dashboard._remote import CLUSTER_UNAVAILABLE, ApiSource

    from ..tui.api import AdminApi

    transport = cluster_transport(target) if cluster else None
    unavailable: dict[str, str] = {}
    if transport is not None:
        health = await check_cluster(target, cluster_transport(target))
        header = {"cluster": target, "restate_version": health.get("restate_version")}
        unavailable.update(CLUSTER_UNAVAILABLE)
        more = health.get("unavailable")
        if isinstance(more, dict):
            unavailable.update({str(k): str(v) for k, v in more.items()})
    else:
        health = await check_runtime(target)
        header = {
            "remote": target,
            **{k: health.get(k) for k in ("app", "store", "ingress_url") if health.get(k)},
        }
    probe = "/api/services" if cluster else "/health"
    source = ApiSource(AdminApi(target, transport), header, unavailable, probe=probe)
    try:
        services = await source.services()
    except Exception:  # the pages say what is wrong; the header is enough to start
        services = None
    if services is not None and not services.ingress_url:
        source.unavailable = {
            **source.unavailable,
            "invoke": "the admin API names no ingress to send requests to",
        }
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    what = f"the Restate cluster at {target}" if cluster else f"the runtime at {target}"
    err.print(f"durable dashboard: http://{shown}:{bound}/ ({what})", markup=False)
    config = uvicorn.Config(
        dashboard_app(source, host), log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    try:
        await server.serve(sockets=[sock])
    finally:
        await source.aclose()
