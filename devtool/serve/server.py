"""Serving the deployment: restate-sdk's ASGI app under hypercorn, stopped by SIGTERM.

HTTP/2 (Restate's bidirectional protocol) by default; ``http1`` makes the deployment
request-response (HTTP/1.1), which Restate registers with ``use_http_11``.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

import restate
from durable.definitions import ServiceDef
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from restate.server import install_shutdown_hook

from .adapter import build

__all__ = ["deployment", "run", "banner"]


def deployment(services: Mapping[str, ServiceDef], http1: bool = False) -> Any:
    """The ASGI app of the deployment (AppLoadError when something is refused)."""
    inner = restate.app(build(services), protocol="request_response" if http1 else "bidi")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop (restate's app refuses it)
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await inner(scope, receive, send)

    return app


def banner(services: Mapping[str, ServiceDef], url: str, http1: bool) -> str:
    """What `durable serve` prints: the URL, the services and how to register them."""
    kinds = {"service": "service", "object": "virtual object", "workflow": "workflow"}
    lines = [
        f"durable serve: a Restate deployment at {url} "
        f"({'HTTP/1.1 request-response' if http1 else 'HTTP/2, bidirectional'})",
    ]
    for s in services.values():
        lines.append(f"  {kinds[s.kind]} {s.name}: {', '.join(s.handlers)}")
    lines += [
        "Register it with your Restate cluster:",
        f"  durable deploy {url} --admin http://127.0.0.1:9070",
        f"  or: restate deployments register {url}" + (" --use-http1.1" if http1 else ""),
    ]
    if http1:
        lines.append('  (over the admin API: POST /deployments {"uri": ..., "use_http_11": true})')
    return "\n".join(lines)


def _listen(host: str, port: int) -> socket.socket:
    """The deployment's socket, bound before anything is printed (OSError if it cannot)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def run(services: Mapping[str, ServiceDef], host: str, port: int, http1: bool) -> int:
    """Serve until SIGTERM or SIGINT; the exit code."""
    app = deployment(services, http1)
    try:
        sock = _listen(host, port)
    except OSError as e:
        print(f"durable serve: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return 1
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn serves (and closes) the bound socket
    config.accesslog = None
    config.errorlog = "-"
    config.graceful_timeout = 5.0
    if http1:
        config.alpn_protocols = ["http/1.1"]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # restate's app takes SIGTERM's loop handler at its first request: share its hook
        # list (so both it and this stop run) instead of a handler it would replace
        install_shutdown_hook(loop, stop.set, signal.SIGTERM)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        print(banner(services, url, http1), flush=True)
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(main())
    return 0
