"""The Host check of the admin server (API and dashboard), against DNS rebinding.

A web page on another site can point its own DNS name at 127.0.0.1; the browser then
treats the runtime as that site, lets the page read its answers and send it actions.
Such requests still carry the other site's name in ``Host``, so the admin server answers
only requests that name it by a loopback name (``127.0.0.1``, ``localhost``, ``[::1]``)
or by the address it was bound to. A server bound to every interface (``0.0.0.0``)
accepts any Host: it was opened to the network on purpose.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HostGuard", "host_allowed", "bind_host_of"]

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
ANY_INTERFACE = frozenset({"0.0.0.0", "::", ""})


def _hostname(netloc: str) -> str:
    """'127.0.0.1:9070' -> '127.0.0.1'; '[::1]:9070' -> '::1'."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def host_allowed(host_header: str, bind_host: str) -> bool:
    """Whether a Host header names this runtime (see the module docstring)."""
    if bind_host in ANY_INTERFACE:
        return True
    name = _hostname(host_header)
    return name in LOOPBACK or name == bind_host.strip("[]").lower()


def bind_host_of(url: str | None) -> str:
    """The host a server's URL names ('127.0.0.1' when there is none)."""
    try:
        return urlsplit(url or "").hostname or "127.0.0.1"
    except ValueError:
        return "127.0.0.1"


class HostGuard:
    """ASGI middleware: 403 (JSON) for a request whose Host names another site."""

    def __init__(self, app: ASGIApp, bind_host: str = "127.0.0.1") -> None:
        self.app = app
        self.bind_host = bind_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not host_allowed(
            Headers(scope=scope).get("host", ""), self.bind_host
        ):
            body = json.dumps(
                {
                    "code": 403,
                    "message": "this runtime answers only to its own address (127.0.0.1 or "
                    "localhost): the Host header names another site",
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
