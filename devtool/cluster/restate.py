"""Restate's admin API over HTTP: SQL introspection, invocation actions, services, the
ingress (for awakeables), state edits.

Facts checked against restate-server 1.7.12:

- ``POST /query {"query"}`` with ``Accept: application/json`` answers ``{"rows": [...]}``
  (DataFusion SQL; read-only by nature).
- ``PATCH /invocations/{id}/cancel`` answers 202, ``kill|purge|pause|resume`` 200,
  ``restart-as-new?from=N`` 200 ``{"new_invocation_id"}``; an unknown id 404, a
  malformed one 400, each with ``{"message"}``.
- ``GET /version`` gives ``version`` and ``ingress_endpoint``.
- ``POST /services/{name}/state {"object_key", "new_state": {name: bytes}}`` replaces a
  key's whole state (202, applied asynchronously).
- Awakeables are completed through the ingress:
  ``POST /restate/awakeables/{id}/resolve|reject``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx

from ..errors import BadRequest, DevtoolError, RequestError

__all__ = [
    "RestateAdmin",
    "ClusterUnreachable",
    "ClusterError",
    "sql_text",
    "check_restate_id",
    "RESTATE_ID",
]

#: a Restate invocation id: ``inv_1`` and 33 base62 characters
RESTATE_ID = re.compile(r"inv_1[0-9A-Za-z]{33}")
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class ClusterUnreachable(DevtoolError):
    """No Restate admin API answers at the URL."""


class ClusterError(RequestError):
    """Restate refused a request; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sql_text(value: str) -> str:
    """``value`` as a DataFusion string literal (quotes doubled): the one way user input
    reaches Restate's SQL."""
    if "\x00" in value:
        raise BadRequest("text with a NUL character cannot be searched for")
    return "'" + value.replace("'", "''") + "'"


def check_restate_id(inv_id: str) -> str:
    """``inv_id`` when it has the shape of a Restate invocation id, else a 400."""
    if not RESTATE_ID.fullmatch(inv_id):
        raise BadRequest(
            f"malformed invocation id {inv_id!r}: Restate's ids look like inv_1 followed "
            "by 33 letters and digits"
        )
    return inv_id


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:300] or f"HTTP {r.status_code}"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return r.text[:300]


class RestateAdmin:
    """An async client of one Restate admin API (``admin_url``, e.g. :9070).

    ``ingress_url`` overrides the ingress Restate reports in ``GET /version`` (needed
    when Restate names an address this machine cannot reach).
    """

    def __init__(
        self,
        admin_url: str,
        ingress_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = admin_url.rstrip("/")
        self._ingress = ingress_url.rstrip("/") if ingress_url else None
        self._http = httpx.AsyncClient(base_url=self.url, timeout=_TIMEOUT, transport=transport)
        self._version: dict[str, Any] | None = None

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise ClusterUnreachable(
                f"the Restate admin API at {self.url} did not answer in time ({method} {url})"
            ) from None
        except httpx.HTTPError as e:
            raise ClusterUnreachable(
                f"no Restate admin API answers at {self.url}: {e or type(e).__name__}. "
                "Check the URL (Restate's admin port, 9070 by default) and that the cluster runs."
            ) from None

    async def _ok(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        r = await self._send(method, url, **kwargs)
        if r.status_code >= 400:
            raise ClusterError(r.status_code, f"Restate answered {r.status_code}: {_message(r)}")
        return r

    # -- reads
    async def version(self, fresh: bool = False) -> dict[str, Any]:
        """``GET /version`` (cached, unless ``fresh``): ``version``, ``ingress_endpoint``..."""
        if self._version is None or fresh:
            r = await self._ok("GET", "/version")
            try:
                body = r.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or "version" not in body:
                raise ClusterUnreachable(
                    f"{self.url} answers, but not as a Restate admin API (GET /version gave "
                    f"{r.text[:80]!r}): give Restate's admin URL (port 9070 by default)"
                )
            self._version = body
        return self._version

    async def ingress_url(self) -> str:
        """Where the ingress is: the override, else what ``GET /version`` names."""
        if self._ingress:
            return self._ingress
        found = (await self.version()).get("ingress_endpoint")
        if not isinstance(found, str) or not found:
            raise ClusterError(
                503,
                "Restate did not say where its ingress is (GET /version has no "
                "ingress_endpoint): give it in the environment, DURABLE_RESTATE_INGRESS=URL",
            )
        return found.rstrip("/")

    async def query(self, sql: str) -> list[dict[str, Any]]:
        """The rows of one SQL query over Restate's introspection tables."""
        r = await self._send(
            "POST", "/query", json={"query": sql}, headers={"accept": "application/json"}
        )
        if r.status_code >= 400:
            raise ClusterError(
                400 if r.status_code < 500 else r.status_code,
                f"Restate's SQL refused the query: {_message(r)}",
            )
        rows = r.json().get("rows")
        return rows if isinstance(rows, list) else []

    async def services(self) -> list[dict[str, Any]]:
        """``GET /services``: each service with its handlers."""
        r = await self._ok("GET", "/services")
        body = r.json()
        return body.get("services", []) if isinstance(body, dict) else []

    # -- actions
    async def act(self, action: str, inv_id: str, **params: Any) -> dict[str, Any]:
        """``PATCH /invocations/{id}/{action}`` (cancel, kill, purge, pause, resume,
        restart-as-new); its JSON answer, or ``{}``."""
        check_restate_id(inv_id)
        r = await self._ok("PATCH", f"/invocations/{inv_id}/{action}", params=params or None)
        try:
            body = r.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    async def set_state(self, service: str, key: str, new_state: dict[str, bytes]) -> None:
        """Replace the whole state of ``service``/``key``."""
        body = {"object_key": key, "new_state": {k: list(v) for k, v in new_state.items()}}
        await self._ok("POST", f"/services/{quote(service, safe='')}/state", json=body)

    async def complete_awakeable(self, awk_id: str, what: str, body: bytes) -> None:
        """Resolve or reject (``what``) an awakeable through the ingress."""
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,200}", awk_id):
            raise BadRequest(f"malformed awakeable id {awk_id!r}: Restate's look like sign_1...")
        url = f"{await self.ingress_url()}/restate/awakeables/{awk_id}/{what}"
        r = await self._send(
            "POST", url, content=body, headers={"content-type": "application/json"}
        )
        if r.status_code >= 400:
            raise ClusterError(
                r.status_code, f"Restate's ingress answered {r.status_code}: {_message(r)}"
            )

    async def ingress(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the ingress (``durable invoke`` on a cluster)."""
        return await self._send(method, f"{await self.ingress_url()}{path}", **kwargs)
