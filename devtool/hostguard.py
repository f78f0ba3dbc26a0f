"""The Host and Origin rules of the runtime's servers (ingress, admin API, dashboard).

**Host** (against DNS rebinding): a web page on another site can point its own DNS name
at 127.0.0.1; the browser then treats the runtime as that site, lets the page read its
answers and send it actions. Such requests still carry the other site's name in
``Host``, so the servers answer only requests that name them by a loopback name
(``127.0.0.1``, ``localhost``, ``[::1]``, any port) or by the address they were bound
to. A server bound to every interface (``0.0.0.0``) accepts any Host: it was opened to
the network on purpose.

**Origin** (against cross-site requests): :func:`origin_verdict` judges where a request
comes from. A browser names the page that sent a request in ``Origin`` (every POST and
every cross-origin fetch) or, failing that, in ``Referer``; the page's scheme, host and
port must all be this server's. ``Origin: null`` (a sandboxed frame, a file) is foreign.
A request naming neither comes from no web page (curl, httpx, the CLI and TUI, SDK
clients): the ingress and the admin API accept it; the dashboard, whose actions come
only from its own pages, refuses it.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HostGuard", "host_allowed", "bind_host_of", "origin_verdict"]

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


def _same_place(url: str, scheme: str, host: str) -> bool:
    try:
        u = urlsplit(url)
    except ValueError:
        return False
    return u.scheme == scheme and u.netloc.lower() == host


def origin_verdict(headers: Headers, scheme: str) -> bool | None:
    """True when a request comes from a page of this very origin, False when from
    another (or ``null``), None when it names no page (see the module docstring)."""
    host = headers.get("host", "").lower()
    origin = headers.get("origin")
    if origin is not None:
        return bool(host) and origin != "null" and _same_place(origin, scheme, host)
    referer = headers.get("referer")
    if referer:
        return bool(host) and _same_place(referer, scheme, host)
    return None


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
