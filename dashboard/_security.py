"""The dashboard's guard: an ASGI middleware in front of every page and action.

- **Host**: requests must name the runtime by a loopback name (``127.0.0.1``,
  ``localhost``, ``[::1]``) or by the address it was bound to; a page on another site
  that rebinds its DNS name to 127.0.0.1 (DNS rebinding) is refused. A runtime bound to
  every interface (``--host 0.0.0.0``) accepts any Host.
- **Same origin**: a request that can change something (any method but GET, HEAD,
  OPTIONS) must come from the dashboard's own pages: its ``Origin`` (or, without one,
  its ``Referer``) must be this very origin (scheme, host and port:
  :func:`durable.devtool.hostguard.origin_verdict`, the admin API's and the ingress's
  rule too); a request with neither is refused here (not in the admin API), as browsers
  send ``Origin`` with every POST. Refusals are 403 and change nothing.
- **Headers**: a Content-Security-Policy that allows scripts from this origin only (no
  inline script, no eval: an injected ``<script>`` or ``onerror=`` would not run even
  if escaping failed), no framing (clickjacking), ``nosniff``, no referrer to other
  sites, and ``Server-Timing: app;dur=MS`` (the time spent in the view).
"""

from __future__ import annotations

import time

from durable.devtool.hostguard import host_allowed, origin_verdict
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Guard", "same_origin", "host_allowed"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def same_origin(headers: Headers, scheme: str) -> bool:
    """Whether an unsafe request comes from a page of this origin."""
    return origin_verdict(headers, scheme) is True


def _refusal(message: str) -> HTMLResponse:
    html = (
        "<!doctype html><meta charset=utf-8><title>403 refused</title>"
        f"<h1>403: refused</h1><p>{message}</p>"
    )
    return HTMLResponse(html, status_code=403, headers=SECURITY_HEADERS)


class Guard:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, bind_host: str = "127.0.0.1") -> None:
        self.app = app
        self.bind_host = bind_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers = Headers(scope=scope)
        if not host_allowed(headers.get("host", ""), self.bind_host):
            await _refusal(
                "this runtime answers only to its own address (127.0.0.1 or localhost): "
                "the Host header names another site"
            )(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and not same_origin(
            headers, scope.get("scheme", "http")
        ):
            await _refusal(
                "cross-origin request refused: dashboard actions come from the dashboard's "
                "own pages (use the admin API or the CLI from scripts)"
            )(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    if k not in h:
                        h[k] = v
                h.append("server-timing", f"app;dur={(time.perf_counter() - t0) * 1000:.2f}")
            await send(message)

        await self.app(scope, receive, send_with_headers)
