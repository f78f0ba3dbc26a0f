"""The TUI's client of the admin API: async httpx, one method per endpoint it uses.

The TUI reaches the runtime only through these calls, so it runs the same against a
runtime on another machine (``durable tui --url``). Two errors::

    Unreachable     no answer (connection refused, timeout, broken response): the
                    runtime is down or restarting; the TUI shows its banner and retries
    ApiError        the runtime answered with an error; ``message`` says why
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ..client import answer

__all__ = ["AdminApi", "ApiError", "Unreachable"]


class Unreachable(Exception):
    """The runtime did not answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(Exception):
    """The runtime answered with an error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _seg(text: str) -> str:
    return quote(text, safe="")


class AdminApi:
    """Calls on one runtime's admin API (``url`` like ``http://127.0.0.1:9070``)."""

    def __init__(
        self,
        url: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            transport=transport,
        )

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise Unreachable(f"the runtime at {self.url} did not answer in time") from None
        except httpx.HTTPError as e:
            raise Unreachable(f"cannot reach the runtime at {self.url}: {e}") from None
        body, error = answer(r)
        if r.status_code == 502:  # a gateway (the Restate backend) found nothing behind it
            raise Unreachable(error or f"{self.url} answered 502")
        if error is not None:
            raise ApiError(error, r.status_code)
        if body is None:
            raise ApiError(
                f"{self.url}{path} answered with something else than JSON: is {self.url} the "
                "admin API of a durable runtime (`durable dev` prints it as 'admin')?",
                r.status_code,
            )
        return body

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "", [], ())}
        return await self.request("GET", path, params=clean)

    async def post(self, path: str, body: Any = None, content: bytes | None = None) -> Any:
        if content is not None:
            return await self.request("POST", path, content=content)
        return await self.request("POST", path, json=body if body is not None else {})

    # -- reads
    async def health(self) -> dict[str, Any]:
        return await self.get("/health")

    async def events(self, after: int = 0) -> dict[str, Any]:
        return await self.get("/api/events", {"after": after})

    async def services(self) -> dict[str, Any]:
        return await self.get("/api/services")

    async def invocations(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return await self.get("/api/invocations", params)

    async def invocation(self, inv_id: str) -> dict[str, Any]:
        return await self.get(f"/api/invocations/{_seg(inv_id)}")

    async def tree(self, inv_id: str) -> dict[str, Any]:
        return await self.get(f"/api/invocations/{_seg(inv_id)}/tree")

    async def state_keys(self, service: str) -> dict[str, Any]:
        return await self.get(f"/api/state/{_seg(service)}")

    async def state(self, service: str, key: str) -> dict[str, Any]:
        return await self.get(f"/api/state/{_seg(service)}/{_seg(key)}")

    async def pending(self) -> dict[str, Any]:
        return await self.get("/api/awakeables")

    # -- actions
    async def act(self, inv_id: str, action: str) -> dict[str, Any]:
        """cancel, kill, purge, pause or resume."""
        return await self.post(f"/api/invocations/{_seg(inv_id)}/{action}")

    async def restart(self, inv_id: str, entry: int, kill: bool = False) -> dict[str, Any]:
        return await self.post(
            f"/api/invocations/{_seg(inv_id)}/restart", {"from": entry, "kill": kill}
        )

    async def resolve(self, item: Mapping[str, Any], value_json: str) -> dict[str, Any]:
        """Resolve a pending awakeable or promise (an item of :meth:`pending`) with JSON
        text; ValueError, before anything is sent, if the text is not JSON."""
        value = json.loads(value_json)
        if "name" in item:  # a workflow promise
            return await self.post(
                "/api/promises/resolve",
                {
                    "service": item["service"],
                    "key": item["key"],
                    "name": item["name"],
                    "value": value,
                },
            )
        return await self.post(
            f"/api/awakeables/{_seg(item['id'])}/resolve", content=value_json.encode()
        )

    async def reject(self, item: Mapping[str, Any], message: str, code: int) -> dict[str, Any]:
        if "name" in item:
            return await self.post(
                "/api/promises/reject",
                {
                    "service": item["service"],
                    "key": item["key"],
                    "name": item["name"],
                    "message": message,
                    "code": code,
                },
            )
        return await self.post(
            f"/api/awakeables/{_seg(item['id'])}/reject", {"message": message, "code": code}
        )

    async def aclose(self) -> None:
        await self._http.aclose()
