"""durable's admin API over a Restate cluster: :func:`cluster_app`, served in-process.

The same paths as :mod:`durable.devtool.admin.routes` (its docstring lists them), so
the CLI, the TUI and the dashboard reach a cluster as they reach ``durable dev``:

- reads: Restate's SQL (:mod:`.views`);
- ``cancel|kill|purge|pause|resume``: ``PATCH /invocations/{id}/...``;
- ``restart {"from": N}``: Restate's restart-as-new of a finished invocation, whose
  ``from`` is a ``sys_journal`` row kept with the completions of the commands up to
  it: the row of entry N-1's command; the copy gets a new id, as in durable;
  ``"kill": true`` kills an unfinished one first;
- state edits: Restate replaces a key's whole state (``POST /services/{name}/state``),
  so a set reads the key's state, changes one entry and sends it all back (a write
  between the two is lost);
- awakeables: resolved and rejected through Restate's ingress;
- ``POST /api/sql``: the query goes to Restate's SQL (its tables, read-only there).

Replay, export, state as of an entry and workflow promises completed from outside have
no Restate counterpart: they answer 501 "not available on a Restate cluster: <why>".
``GET /health`` says which cluster answers and its Restate version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from durable.messages import EntryKind
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..admin.filters import int_param, parse_filter
from ..admin.routes import (
    ALL_METHODS,
    endpoint,
    http_error,
    json_error,
    json_object,
    not_found_route,
    rejection,
    strict_json,
)
from ..errors import BadRequest, Conflict, NotFound, RequestError
from ..lifecycle import ACTIONS, TERMINAL, refusal
from ..parsing import read_body
from . import views
from .journal import map_journal
from .restate import ClusterUnreachable, RestateAdmin, check_restate_id

__all__ = ["cluster_app", "NotOnCluster", "not_on_cluster"]

_MAX_BODY = 10 * 1024 * 1024
_MAX_BULK = 10_000
_DONE = {"kill": "killed", "purge": "purged", "pause": "paused", "resume": "resumed"}


class NotOnCluster(RequestError):
    """501: a feature Restate's API does not give."""

    status = 501


def not_on_cluster(why: str) -> NotOnCluster:
    return NotOnCluster(f"not available on a Restate cluster: {why}")


def cluster_app(admin_url: str, ingress_url: str | None = None, **client: Any) -> Starlette:
    """The admin API's paths over the Restate cluster whose admin API is ``admin_url``.

    ``ingress_url`` overrides the ingress Restate names in ``GET /version``; ``client``
    goes to :class:`~.restate.RestateAdmin` (tests pass a transport).
    """
    admin = RestateAdmin(admin_url, ingress_url, **client)

    def guarded(fn: Any, methods: tuple[str, ...] = ("GET",)) -> Any:
        inner = endpoint(fn, methods)

        async def handle(request: Request) -> Response:
            try:
                return await inner(request)
            except ClusterUnreachable as e:
                return json_error(502, str(e))

        return handle

    async def health(_r: Request) -> Response:
        try:
            version = await admin.version(fresh=True)  # is the cluster there now?
        except ClusterUnreachable as e:
            return JSONResponse(
                {"status": "unreachable", "cluster": admin.url, "message": str(e)},
                status_code=502,
            )
        except RequestError as e:
            return JSONResponse(
                {"status": "unreachable", "cluster": admin.url, "message": e.message},
                status_code=502,
            )
        return JSONResponse(
            {
                "status": "ok",
                "cluster": admin.url,
                "restate_version": version.get("version"),
                "ingress_url": await admin.ingress_url(),
                "admin_url": admin.url,
            }
        )

    # -- reads
    async def services(_r: Request) -> Any:
        return await views.services(admin)

    async def openapi_doc(_r: Request) -> Any:
        raise not_on_cluster(
            "Restate gives each service's OpenAPI document itself: "
            f"GET {admin.url}/services/NAME/openapi"
        )

    async def list_invocations(r: Request) -> Any:
        q = r.query_params
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            raise BadRequest("order must be asc or desc")
        for cursor in ("after", "before"):
            if q.get(cursor):
                check_restate_id(q[cursor])
        return await views.list_invocations(
            admin,
            parse_filter(q),
            after=q.get("after") or None,
            before=q.get("before") or None,
            limit=int_param(q, "limit", 50) or 0,
            count=q.get("count", "") in ("1", "true", "yes"),
            newest_first=order == "desc",
        )

    async def show_invocation(r: Request) -> Any:
        inv_id = check_restate_id(r.path_params["id"])
        body = await views.show_invocation(admin, inv_id)
        if body is None:
            raise NotFound(f"unknown invocation {inv_id} (or Restate purged it)")
        return body

    async def tree(r: Request) -> Any:
        inv_id = check_restate_id(r.path_params["id"])
        body = await views.call_tree(admin, inv_id, int_param(r.query_params, "limit", 500) or 1)
        if body is None:
            raise NotFound(f"unknown invocation {inv_id}")
        return body

    # -- actions
    async def status(inv_id: str) -> str:
        rows = await admin.query(
            "SELECT id, status, completion_result, completion_failure FROM sys_invocation "
            f"WHERE id = '{check_restate_id(inv_id)}'"
        )
        if not rows:
            raise NotFound(f"unknown invocation {inv_id}")
        return views.status_of(rows[0])

    async def act(name: str, inv_id: str) -> dict[str, Any]:
        before = await status(inv_id)
        why = refusal(name, before, inv_id)
        if why is not None:
            raise Conflict(why)
        await admin.act(name, inv_id)
        if name == "purge":
            return {"id": inv_id, "action": name, "status": "purged", "message": "purged"}
        after = before
        for _ in range(20):  # Restate applies it asynchronously: wait a little for it
            try:
                after = await status(inv_id)
            except NotFound:  # Restate drops an invocation killed before it started
                ended = {"kill": "killed", "cancel": "cancelled"}.get(name, after)
                message = f"{ended} before it started: Restate keeps no trace of it"
                return {"id": inv_id, "action": name, "status": ended, "message": message}
            if after != before or name == "resume":
                break
            await asyncio.sleep(0.05)
        if name == "cancel":
            message = (
                "cancelled"
                if after == "cancelled"
                else f"it ended {after}"
                if after in TERMINAL
                else f"cancel delivered to the handler; it is {after} now"
            )
        elif name == "resume":
            message = f"resumed: it is {after} now"
        else:
            message = _DONE.get(name, name)
        return {"id": inv_id, "action": name, "status": after, "message": message}

    async def action(r: Request) -> Any:
        name = r.path_params["action"]
        if name not in ACTIONS:
            raise NotFound(f"unknown action {name!r} (actions: {', '.join(ACTIONS)})")
        return await act(name, r.path_params["id"])

    async def restart(r: Request) -> Any:
        inv_id = check_restate_id(r.path_params["id"])
        body = await json_object(r)
        n = body.get("from")
        if not isinstance(n, int) or isinstance(n, bool):
            raise BadRequest('give the entry to restart from: {"from": N}')
        if n < 1:
            raise BadRequest("restart from an entry of 1 or more (entry 0 is the input)")
        st = await status(inv_id)
        killed = False
        if st not in TERMINAL:
            if not body.get("kill"):
                raise Conflict(
                    f"invocation {inv_id} is {st}: Restate restarts only finished "
                    'invocations; kill it first, or send {"kill": true}'
                )
            await admin.act("kill", inv_id)
            killed = True
            deadline = time.monotonic() + 10
            while st not in TERMINAL and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                st = await status(inv_id)
        keep_to = await restart_point(inv_id, n)
        answer = await admin.act("restart-as-new", inv_id, **{"from": keep_to})
        new_id = answer.get("new_invocation_id")
        new_status = await status(new_id) if isinstance(new_id, str) else None
        return {
            "id": new_id,
            "restarted_from": inv_id,
            "from": n,
            "status": new_status,
            "killed_original": killed,
            "note": f"Restate's restart-as-new from={keep_to} (its journal row of entry {n - 1})",
        }

    async def restart_point(inv_id: str, n: int) -> int:
        """Restate's ``from`` (a sys_journal row, kept with the completions of the
        commands up to it) that keeps durable entries 0 to n-1."""
        rows = await admin.query(
            "SELECT index, entry_type, entry_json, appended_at FROM sys_journal "
            f"WHERE id = '{inv_id}' ORDER BY index"
        )
        if not rows:
            raise Conflict(f"{views.NO_JOURNAL}: {inv_id} cannot be restarted from an entry")
        entries = map_journal(rows, inv_id)
        last = len(entries) - 1
        if entries[-1].entry.kind is EntryKind.OUTPUT:
            last -= 1
        if n > last + 1:
            raise BadRequest(
                f"entry {n} is past the end of the journal of {inv_id}: restart from an "
                f"entry between 1 and {last + 1}"
            )
        kept = entries[:n]
        for m in kept:
            if not m.entry.completed:
                raise Conflict(
                    f"entry {m.entry.index} ({m.entry.kind.value}) is not completed, so the "
                    f"new invocation could not use its result; restart from entry "
                    f"{m.entry.index} or earlier"
                )
        return max((m.restate_index for m in kept if m.restate_index is not None), default=0)

    async def bulk(r: Request) -> Any:
        body = await json_object(r)
        act_name = body.get("action")
        if act_name not in ACTIONS:
            raise BadRequest(f"action must be one of {', '.join(ACTIONS)}")
        ids = body.get("ids")
        if ids is None:
            flt = body.get("filter")
            if not isinstance(flt, dict):
                raise BadRequest('give {"action", "ids": [...]} or {"action", "filter": {...}}')
            ids = await matching_ids(flt)
        elif not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise BadRequest("ids must be a list of invocation ids")
        if body.get("dry_run"):
            return {"action": act_name, "matched": len(ids), "ids": ids[:1000]}
        done, failed = [], []
        for inv_id in dict.fromkeys(ids):
            try:
                done.append(await act(act_name, inv_id))
            except RequestError as e:
                failed.append({"id": inv_id, "code": e.status, "message": e.message})
        return {"action": act_name, "done": done, "failed": failed}

    async def matching_ids(flt: dict[str, Any]) -> list[str]:
        f = parse_filter(flt)
        ids: list[str] = []
        after = None
        while len(ids) < _MAX_BULK:
            page = await views.list_invocations(admin, f, after=after, limit=views.MAX_PAGE)
            ids.extend(i["id"] for i in page["invocations"])
            after = page["next"]
            if after is None:
                break
        return ids

    async def no_replay(_r: Request) -> Any:
        raise not_on_cluster(
            "replay runs local code against a journal in the local store: copy the "
            "invocation home with `durable pull ID --restate URL`, then replay it"
        )

    # -- state
    async def state_keys(r: Request) -> Any:
        return await views.state_keys(admin, r.path_params["service"])

    async def state(r: Request) -> Any:
        service, key = r.path_params["service"], r.path_params["key"]
        if r.method == "POST":
            body = await json_object(r)
            name = body.get("name")
            if not isinstance(name, str):
                raise BadRequest('give {"name": ..., "value": ...} or {"name": ..., "clear": true}')
            current = await views.raw_state(admin, service, key)
            if body.get("clear"):
                current.pop(name, None)
            elif "value" in body:
                current[name] = json.dumps(body["value"]).encode("utf-8")
            else:
                raise BadRequest('give the new "value" (any JSON), or "clear": true')
            await admin.set_state(service, key, current)
            return {
                "service": service,
                "key": key,
                "name": name,
                "cleared": bool(body.get("clear")),
                "note": "Restate applies a state change asynchronously",
            }
        if r.query_params.get("invocation") or r.query_params.get("entry"):
            raise not_on_cluster(
                "Restate keeps a key's state now, not its history, so the state as of an "
                "entry cannot be shown"
            )
        return await views.state(admin, service, key)

    # -- awakeables and promises
    async def pending(_r: Request) -> Any:
        return await views.pending(admin)

    async def resolve_awakeable(r: Request) -> Any:
        body = await read_body(r, _MAX_BODY)
        text = body.strip() or b"null"
        strict_json(text, "the value")
        awk = r.path_params["id"]
        await admin.complete_awakeable(awk, "resolve", text)
        return {"id": awk, "invocation_id": None, "resolved": True}

    async def reject_awakeable(r: Request) -> Any:
        body = await json_object(r)
        message, code = rejection(body)
        awk = r.path_params["id"]
        # Restate's ingress takes the reason as text and rejects with code 500
        await admin.complete_awakeable(awk, "reject", message.encode("utf-8"))
        return {"id": awk, "invocation_id": None, "rejected": True, "code": code}

    async def promise(_r: Request) -> Any:
        raise not_on_cluster(
            "Restate completes a workflow promise only from a handler of that workflow: "
            "call one of its shared handlers that resolves it"
        )

    # -- sql and export
    async def sql(r: Request) -> Any:
        body = await json_object(r)
        text = body.get("sql")
        if not isinstance(text, str):
            raise BadRequest('give {"sql": "SELECT ..."}')
        limit = int_param(body, "limit", 1000) or 1000
        if limit < 1:
            raise BadRequest("limit must be 1 or more")
        t0 = time.perf_counter()
        rows = await admin.query(text)
        columns = list(dict.fromkeys(k for row in rows for k in row))
        return {
            "columns": columns,
            "types": ["" for _ in columns],
            "rows": [[row.get(c) for c in columns] for row in rows[:limit]],
            "truncated": len(rows) > limit,
            "truncated_by": "rows" if len(rows) > limit else None,
            "elapsed_ms": round((time.perf_counter() - t0) * 1000, 3),
            "note": "Restate's SQL (DataFusion) over its own tables: sys_invocation, "
            "sys_journal, state, sys_promise, sys_service...",
        }

    async def no_export(_r: Request) -> Any:
        raise not_on_cluster(
            f"Restate has no table export; read its tables with SQL (POST {admin.url}/query)"
        )

    def get(path: str, fn: Any) -> Route:
        return Route(path, guarded(fn, ("GET",)), methods=ALL_METHODS)

    def post(path: str, fn: Any) -> Route:
        return Route(path, guarded(fn, ("POST",)), methods=ALL_METHODS)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await admin.close()

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/api/health", health),
            get("/api/services", services),
            get("/api/openapi.json", openapi_doc),
            get("/api/invocations", list_invocations),
            post("/api/invocations/bulk", bulk),
            get("/api/invocations/{id}", show_invocation),
            get("/api/invocations/{id}/tree", tree),
            post("/api/invocations/{id}/replay", no_replay),
            post("/api/invocations/{id}/restart", restart),
            post("/api/invocations/{id}/{action}", action),
            post("/api/replay", no_replay),
            get("/api/state/{service}", state_keys),
            Route(
                "/api/state/{service}/{key:path}",
                guarded(state, ("GET", "POST")),
                methods=ALL_METHODS,
            ),
            get("/api/awakeables", pending),
            post("/api/awakeables/{id}/resolve", resolve_awakeable),
            post("/api/awakeables/{id}/reject", reject_awakeable),
            post("/api/promises/{what:str}", promise),
            post("/api/sql", sql),
            get("/api/export", no_export),
            get("/api/export/{table}", no_export),
            not_found_route,
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.restate = admin  # in-process users (the CLI's client) close it themselves
    return app
