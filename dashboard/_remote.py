"""The API source: the pages' reads and actions over an admin API reached with httpx.

The admin API's JSON is the contract: a durable runtime elsewhere (``durable dashboard
--url``) and a Restate cluster seen through :func:`durable.devtool.cluster.cluster_app`
(``--restate``, over ``httpx.ASGITransport``) answer the same paths and shapes. Errors
come back as :class:`~._source.SourceError` with the API's status and message (501:
:class:`~._source.NotAvailable`); no answer is :class:`~._source.SourceUnreachable`,
remembered for the every-page banner until a later call gets through.

Invoking a handler goes to the ingress the API names (``ingress_url`` of
``/api/services``), as a one-way send then an attach, so a call that outlives the
page's wait still links to its invocation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from durable.devtool.admin.views import MAX_PAGE
from durable.devtool.lifecycle import Status
from durable.devtool.tui.api import AdminApi, ApiError, Unreachable
from durable.messages import Failure, HandlerInfo, ServiceInfo

from ._source import Invoked, NotAvailable, ServicesView, SourceError, SourceUnreachable

__all__ = ["ApiSource", "CLUSTER_UNAVAILABLE"]

#: what a Restate cluster cannot give the dashboard, and why
CLUSTER_UNAVAILABLE = {
    "replay": "not available on a Restate cluster: replay runs today's local code against "
    "a journal; copy the invocation home with `durable pull ID --restate URL`, then "
    "replay it under `durable dev`",
    "timetravel": "not available on a Restate cluster: Restate keeps a key's state now, "
    "not its history, so there is no state as of an entry",
    "promises": "not available on a Restate cluster: Restate completes a workflow promise "
    "only from a handler of that workflow (call one of its shared handlers that resolves it)",
}

_HANDLER_FIELDS = {f.name for f in dataclasses.fields(HandlerInfo)}


def _service(d: Mapping[str, Any]) -> ServiceInfo:
    handlers = tuple(
        HandlerInfo(**{k: v for k, v in h.items() if k in _HANDLER_FIELDS})
        for h in d.get("handlers") or ()
    )
    return ServiceInfo(str(d["name"]), str(d["kind"]), handlers, d.get("retry_policy"))


def _seg(text: str) -> str:
    return quote(text, safe="")


class ApiSource:
    """The dashboard's :class:`~._source.Source` over ``api`` (see the module docstring)."""

    def __init__(
        self,
        api: AdminApi,
        header: Mapping[str, Any],
        unavailable: Mapping[str, str] | None = None,
        ingress_transport: httpx.AsyncBaseTransport | None = None,
        probe: str = "/health",
    ) -> None:
        self.api = api
        self._header = dict(header)
        self.unavailable: Mapping[str, str] = dict(unavailable or {})
        self._outage: str | None = None
        self._app_error: dict[str, Any] | None = None
        self._degraded: str | None = None
        #: what :meth:`check` reads: a runtime's /health; on a cluster, a path that
        #: reaches Restate (the backend's /health remembers the version it read once)
        self._probe = probe
        self._ingress = httpx.AsyncClient(transport=ingress_transport, timeout=30.0)

    # -- what every page shows
    def header(self) -> Mapping[str, Any]:
        return self._header

    def app_error(self) -> dict[str, Any] | None:
        return self._app_error

    def outage(self) -> str | None:
        return self._outage

    def store_degraded(self) -> str | None:
        return self._degraded

    async def check(self) -> None:
        try:
            health = await self._get(self._probe)
        except (SourceError, SourceUnreachable):
            return
        self._app_error = health.get("app_error") or None
        self._degraded = health.get("reason") if health.get("status") == "degraded" else None

    async def _call(self, coro: Any) -> Any:
        try:
            result = await coro
        except Unreachable as e:
            self._outage = e.message
            raise SourceUnreachable(e.message) from None
        except ApiError as e:
            if e.status == 502:  # the cluster backend could not reach Restate
                self._outage = e.message
                raise SourceUnreachable(e.message) from None
            self._outage = None
            if e.status == 501:
                raise NotAvailable(e.message) from None
            raise SourceError(e.message, e.status) from None
        self._outage = None
        return result

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self._call(self.api.get(path, params))

    async def _post(self, path: str, body: Any = None, content: bytes | None = None) -> Any:
        return await self._call(self.api.post(path, body, content))

    async def _get_or_none(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return await self._get(path, params)
        except SourceError as e:
            if e.status == 404:
                return None
            raise

    # -- reads
    async def services(self) -> ServicesView:
        body = await self._get("/api/services")
        services = sorted((_service(s) for s in body.get("services", [])), key=lambda s: s.name)
        self._app_error = body.get("app_error") or None
        return ServicesView(services, body.get("error"), True, body.get("ingress_url"))

    async def invocations(
        self,
        filters: Mapping[str, str],
        *,
        after: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        params = {**filters, "after": after, "before": before, "limit": limit}
        return await self._get("/api/invocations", params)

    async def count(self, filters: Mapping[str, str]) -> tuple[int, bool]:
        page = await self._get("/api/invocations", {**filters, "count": 1, "limit": 0})
        return int(page.get("total") or 0), "total_since" in page

    async def status_counts(self, filters: Mapping[str, str] | None) -> dict[str, int]:
        base = dict(filters or {})

        async def one(status: str) -> tuple[str, int]:
            n, _ = await self.count({**base, "status": status})
            return status, n

        counted = await asyncio.gather(*(one(s.value) for s in Status))
        return {s: n for s, n in counted if n}

    async def matching_ids(self, filters: Mapping[str, str], cap: int) -> tuple[list[str], bool]:
        ids: list[str] = []
        after = None
        while len(ids) < cap:
            page = await self.invocations(filters, after=after, limit=min(MAX_PAGE, cap - len(ids)))
            ids.extend(i["id"] for i in page["invocations"])
            after = page.get("next")
            if after is None:
                return ids, False
        return ids, True

    async def invocation(self, inv_id: str) -> dict[str, Any] | None:
        return await self._get_or_none(f"/api/invocations/{_seg(inv_id)}", {"state": "0"})

    async def tree(self, inv_id: str, limit: int) -> dict[str, Any] | None:
        return await self._get_or_none(f"/api/invocations/{_seg(inv_id)}/tree", {"limit": limit})

    async def state_step(self, service: str, key: str, inv_id: str, entry: int) -> dict[str, Any]:
        path = f"/api/state/{_seg(service)}/{_seg(key)}"

        async def as_of(n: int) -> dict[str, Any]:
            try:
                body = await self._get(path, {"invocation": inv_id, "entry": str(n)})
            except SourceError as e:
                if e.status == 404:
                    raise LookupError(e.message) from None
                raise
            return body["state"]

        inv = await self.invocation(inv_id)
        e = next((e for e in (inv or {}).get("journal", []) if e["index"] == entry), None)
        if e is None:
            raise LookupError(f"invocation {inv_id} has no entry {entry}")
        after = await as_of(entry)
        before = await as_of(entry - 1) if entry else None
        return {
            "state": after,
            "before": before,
            "kind": e.get("kind"),
            "name": e.get("name"),
            "at": e.get("created_at"),
        }

    async def state(self, service: str, key: str) -> dict[str, Any]:
        return await self._get(f"/api/state/{_seg(service)}/{_seg(key)}")

    async def state_keys(self, service: str) -> dict[str, Any]:
        return await self._get(f"/api/state/{_seg(service)}")

    async def pending(self) -> dict[str, Any]:
        body = await self._get("/api/awakeables")
        for items in body.values():
            if isinstance(items, list):
                for p in items:
                    p.setdefault("schema", None)
        return {k: v for k, v in body.items() if isinstance(v, list)}

    async def tables(self) -> list[str]:
        try:
            return list((await self._get("/api/export")).get("tables", []))
        except SourceError:
            return []

    async def sql(self, text: str, limit: int) -> dict[str, Any]:
        return await self._post("/api/sql", {"sql": text, "limit": limit})

    # -- actions
    async def act(self, action: str, inv_id: str) -> dict[str, Any]:
        return await self._post(f"/api/invocations/{_seg(inv_id)}/{action}")

    async def restart(self, inv_id: str, entry: int, kill: bool) -> dict[str, Any]:
        return await self._post(
            f"/api/invocations/{_seg(inv_id)}/restart", {"from": entry, "kill": kill}
        )

    async def replay(self, inv_id: str) -> dict[str, Any]:
        return await self._post(f"/api/invocations/{_seg(inv_id)}/replay", {})

    async def bulk(self, action: str, ids: list[str]) -> dict[str, Any]:
        try:
            return await self._post("/api/invocations/bulk", {"action": action, "ids": ids})
        except NotAvailable:  # an API without the bulk endpoint: one action at a time
            pass
        done: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        sem = asyncio.Semaphore(8)

        async def one(inv_id: str) -> None:
            async with sem:
                try:
                    done.append({"id": inv_id, **await self.act(action, inv_id)})
                except SourceError as e:
                    failed.append({"id": inv_id, "code": e.status, "message": e.message})

        await asyncio.gather(*(one(i) for i in ids))
        return {"action": action, "done": done, "failed": failed}

    async def resolve_awakeable(self, awk_id: str, value_json: str) -> dict[str, Any]:
        return await self._post(
            f"/api/awakeables/{_seg(awk_id)}/resolve", content=value_json.encode("utf-8")
        )

    async def reject_awakeable(self, awk_id: str, message: str, code: int) -> dict[str, Any]:
        return await self._post(
            f"/api/awakeables/{_seg(awk_id)}/reject", {"message": message, "code": code}
        )

    async def complete_promise(
        self,
        service: str,
        key: str,
        name: str,
        value_json: str | None = None,
        failure: Failure | None = None,
    ) -> dict[str, Any]:
        target = {"service": service, "key": key, "name": name}
        if failure is not None:
            body = {**target, "message": failure.message, "code": failure.code}
            return await self._post("/api/promises/reject", body)
        value = json.loads(value_json) if value_json is not None else None
        return await self._post("/api/promises/resolve", {**target, "value": value})

    async def set_state(
        self, service: str, key: str, name: str, value_json: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if value_json is None:
            body["clear"] = True
        else:
            body["value"] = json.loads(value_json)
        return await self._post(f"/api/state/{_seg(service)}/{_seg(key)}", body)

    async def invoke(
        self,
        service: str,
        handler: str,
        key: str | None,
        body: bytes,
        idempotency_key: str | None,
        delay: float,
        send: bool,
        wait_s: float,
    ) -> Invoked:
        ingress = (await self.services()).ingress_url
        if not ingress:
            raise NotAvailable("the admin API names no ingress to send the request to")
        base = ingress.rstrip("/")
        path = "/".join(_seg(p) for p in (service, *((key,) if key is not None else ()), handler))
        headers = {"content-type": "application/json", "x-durable-source": "dashboard"}
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key
        params = {"delay": f"{delay:g}s"} if delay else None
        try:
            r = await self._ingress.post(
                f"{base}/{path}/send", content=body, headers=headers, params=params
            )
        except httpx.HTTPError as e:
            raise SourceError(f"the ingress at {base} did not answer: {e}", 502) from None
        answer = _json(r)
        if r.status_code >= 300 or not isinstance(answer, dict) or "invocationId" not in answer:
            message = answer.get("message") if isinstance(answer, dict) else None
            raise SourceError(
                f"the ingress answered {r.status_code}: {message or r.text[:200]}",
                r.status_code if 400 <= r.status_code < 500 else 502,
            )
        inv_id = str(answer["invocationId"])
        existing = answer.get("status") == "PreviouslyAccepted"
        if send:
            return Invoked(inv_id, existing)
        try:
            r = await self._ingress.get(
                f"{base}/restate/invocation/{_seg(inv_id)}/attach", timeout=wait_s
            )
        except httpx.TimeoutException:
            return Invoked(inv_id, existing)
        except httpx.HTTPError as e:
            raise SourceError(f"the ingress at {base} did not answer: {e}", 502) from None
        out = _json(r)
        if r.status_code >= 400:
            message = out.get("message") if isinstance(out, dict) else r.text
            return Invoked(
                inv_id, existing, "failed", None, Failure(r.status_code, str(message)), True
            )
        return Invoked(inv_id, existing, "completed", out, None, True)

    async def aclose(self) -> None:
        await self._ingress.aclose()
        await self.api.aclose()


def _json(r: httpx.Response) -> Any:
    if not r.content:
        return None
    try:
        return r.json()
    except ValueError:
        return r.text
