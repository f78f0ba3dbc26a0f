"""A small asyncio HTTP/1.1 keep-alive client: the load generator's default.

Why not httpx: on this kind of machine an ``httpx.AsyncClient`` spends about 1.1 ms of
CPU per request at concurrency 1 and about 3.3 ms at concurrency 32 (its pool scans its
connections per request), so it saturates one of the two cores near 300 requests/s and
the benchmark would measure httpx. This client spends about 0.05 ms per request.
``--client httpx`` still selects httpx, to compare.

It speaks only what the benchmarks need: one host, requests with a body and a
Content-Length, responses framed by Content-Length, chunked encoding or connection close.
It mimics the part of httpx's interface the harness uses (``post``, ``get``,
``status_code``, ``content``, ``text``, ``json()``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit


class TransportError(Exception):
    """The connection failed (refused, reset, closed mid-response)."""


class Timeout(TransportError):
    """No complete response within the timeout."""


class Response:
    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LightClient:
    """At most ``connections`` requests in flight, each on its own kept-alive connection."""

    def __init__(
        self,
        base_url: str,
        connections: int,
        *,
        timeout: float = 120.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        u = urlsplit(base_url)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 80
        self.timeout = timeout
        self._sem = asyncio.Semaphore(connections)
        self._idle: list[Conn] = []
        self._fixed = f"Host: {self.host}:{self.port}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in (headers or {}).items()
        )

    async def __aenter__(self) -> LightClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, w in idle:
            w.close()

    async def post(self, path: str, content: bytes = b"", **kw: Any) -> Response:
        return await self.request("POST", path, content, **kw)

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, b"", **kw)

    async def request(
        self,
        method: str,
        path: str,
        content: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed}Content-Length: {len(content)}\r\n"
        if headers:
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        data = (head + "\r\n").encode("latin-1") + content
        limit = self.timeout if timeout is None else timeout
        async with self._sem:
            for attempt in (0, 1):
                r, w, reused = await self._connection()
                try:
                    async with asyncio.timeout(limit):
                        w.write(data)
                        resp, keep = await _read_response(r, method)
                except TimeoutError:
                    w.close()
                    raise Timeout(f"{method} {path}: no answer in {limit:.0f} s") from None
                except (asyncio.IncompleteReadError, ConnectionError, OSError) as e:
                    w.close()
                    stale = reused and (
                        isinstance(e, ConnectionError)
                        or (isinstance(e, asyncio.IncompleteReadError) and not e.partial)
                    )
                    if stale and attempt == 0:
                        continue  # the server closed an idle kept-alive connection
                    raise TransportError(f"{method} {path}: {type(e).__name__}: {e}") from e
                except BaseException:
                    w.close()  # cancelled mid-request: the connection's state is unknown
                    raise
                if keep:
                    self._idle.append((r, w))
                else:
                    w.close()
                return resp
        raise AssertionError("unreachable")

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        while self._idle:
            r, w = self._idle.pop()
            if r.at_eof() or w.is_closing():
                w.close()
                continue
            return r, w, True
        try:
            r, w = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        except OSError as e:
            raise TransportError(f"connect {self.host}:{self.port}: {e}") from e
        return r, w, False


async def _read_response(r: asyncio.StreamReader, method: str) -> tuple[Response, bool]:
    while True:
        head = await r.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        if status != 100:
            break
    headers: dict[str, str] = {}
    for ln in lines[1:]:
        if ln:
            k, _, v = ln.partition(b":")
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    keep = headers.get("connection", "").lower() != "close"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "content-length" in headers:
        body = await r.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size_line = await r.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await r.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                break
            parts.append(await r.readexactly(size))
            await r.readexactly(2)
        body = b"".join(parts)
    else:
        body = await r.read()
        keep = False
    return Response(status, headers, body), keep
