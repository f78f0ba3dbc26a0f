"""The admin API's JSON endpoints (the dashboard, the TUI and the CLI use only these).

Reads::

    GET  /api/services                      services, handlers, JSON schemas
    GET  /api/openapi.json                  OpenAPI document of the ingress
    GET  /api/invocations                   filters: service handler key status since until
                                            id (in ids), q (text in id, input, output, error);
                                            paging: limit after before order; count=1
    GET  /api/invocations/{id}              row, request, journal (state, bar span), waits
    GET  /api/invocations/{id}/tree         its call tree (root to every descendant); limit
    GET  /api/state/{service}               keys holding state
    GET  /api/state/{service}/{key}         state now; ?invocation=ID&entry=N: as of that entry
    GET  /api/awakeables                    pending awakeables and workflow promises, schemas
    GET  /api/export                        the store's tables; /api/export/{table}: Parquet

Actions (POST only, refused cross-origin)::

    POST /api/invocations/{id}/cancel|kill|purge|pause|resume
    POST /api/invocations/{id}/replay       {"timeout"}
    POST /api/invocations/{id}/restart      {"from": N, "kill": false}
    POST /api/invocations/bulk              {"action", "ids"} or {"action", "filter"}; "dry_run"
    POST /api/invocations/import            {"copy": a pulled copy, "force"} (durable pull)
    POST /api/replay                        {"ids": [...]}
    POST /api/state/{service}/{key}         {"name", "value"} or {"name", "clear": true}
    POST /api/awakeables/{id}/resolve       body: the JSON value
    POST /api/awakeables/{id}/reject        {"message", "code"}
    POST /api/promises/resolve|reject       {"service", "key", "name", "value"|"message"}
    POST /api/sql                           {"sql", "limit", "timeout"}: read-only;
                                            timeout in seconds, above 0 and at most 10

Errors are JSON ``{"code", "message"}`` with a 4xx status (503 when no runtime or no
worker can do it). Bodies are read as :func:`durable.serde.parse_strict` reads them:
JSON the journal can store (no NaN, no lone surrogate, bounded nesting), else a 400. :func:`offline_app` serves the read endpoints from a store opened
read-only, for ``durable`` commands run while no runtime holds the file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import duckdb
from durable.messages import Failure
from durable.serde import UnstorableValue, parse_strict
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..engine import Engine
from ..errors import BadRequest, NotFound, RequestError, Unavailable
from ..hostguard import origin_verdict
from ..openapi import openapi
from ..parsing import read_body
from ..pulled import PulledCopy, save_copy
from ..store import Store, queries
from ..store.queries import InvocationFilter
from ..store.readonly import MAX_TIMEOUT_S, SqlRefused, export_table, run_query
from . import actions, views
from . import tree as call_tree
from .filters import int_param, parse_filter, seconds_param

__all__ = [
    "routes",
    "offline_app",
    "json_error",
    "not_found_route",
    "http_error",
    "endpoint",
    "json_object",
    "strict_json",
    "rejection",
    "ALL_METHODS",
]

_MAX_BODY = 10 * 1024 * 1024
_MAX_BULK = 100_000
Handler = Callable[[Request], Awaitable[Any]]


def json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status)


async def http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's own errors (405, 404) as JSON too."""
    assert isinstance(exc, HTTPException)
    return json_error(exc.status_code, exc.detail)


def _same_origin(request: Request) -> bool:
    """The dashboard's rule (scheme, host and port), except that a request naming no
    page at all (no Origin, no Referer) is welcome: the CLI, the TUI, curl."""
    return origin_verdict(request.headers, request.scope.get("scheme", "http")) is not False


ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def endpoint(fn: Handler, methods: tuple[str, ...] = ("GET",)) -> Handler:
    async def handle(request: Request) -> Response:
        if request.method not in methods:
            return json_error(
                405,
                f"use {' or '.join(methods)} for {request.url.path}"
                + (" (actions are POST only)" if "POST" in methods else ""),
            )
        if request.method == "POST" and not _same_origin(request):
            return json_error(
                403,
                "cross-origin request refused: admin actions come from the dashboard's own "
                "pages or from clients that send no Origin (the CLI, curl)",
            )
        try:
            result = await fn(request)
        except RequestError as e:
            return json_error(e.status, e.message)
        except (SqlRefused, UnstorableValue) as e:
            return json_error(400, str(e))
        except LookupError as e:
            return json_error(404, str(e.args[0]) if e.args else "not found")
        return result if isinstance(result, Response) else JSONResponse(result)

    return handle


async def _json_body(request: Request) -> Any:
    body = await read_body(request, _MAX_BODY)
    if not body.strip():
        return {}
    return strict_json(body, "the request body")


def strict_json(body: bytes, what: str) -> Any:
    try:
        return parse_strict(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not UTF-8 text") from None
    except UnstorableValue as e:
        raise BadRequest(f"{what} cannot be accepted: {e.message}") from None
    except ValueError as e:
        raise BadRequest(f"{what} is not valid JSON: {e}") from None


async def json_object(request: Request) -> dict[str, Any]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


# ---------------------------------------------------------------------------- routes
def routes(store: Store, engine: Engine | None, info: dict[str, Any]) -> list[Route]:
    """The endpoints over ``store`` and, when a runtime is up, ``engine``."""

    def live(journal_of: str | None = None) -> views.Live | None:
        return views.Live.of(engine, journal_of) if engine is not None else None

    async def fresh() -> None:
        if engine is not None:
            await store.write([])  # queued writes are readable

    def need_engine(what: str) -> Engine:
        if engine is None:
            raise Unavailable(
                f"no runtime is running, so nothing can {what}: this command read the store "
                "file read-only. Start one with `durable dev`."
            )
        return engine

    # -- services
    async def services(_r: Request) -> Any:
        eng = need_engine("tell the services (the worker discovers them)")
        return {
            "services": [dataclasses.asdict(s) for s in eng.services.values()],
            "error": eng.service_unavailable,
            "app_error": views.app_error(eng),
            "ingress_url": info.get("ingress_url"),
        }

    async def openapi_doc(_r: Request) -> Any:
        eng = need_engine("tell the services (the worker discovers them)")
        return openapi(list(eng.services.values()), info.get("ingress_url"))

    # -- invocations
    async def list_invocations(r: Request) -> Any:
        q = r.query_params
        f = parse_filter(q)
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            raise BadRequest("order must be asc or desc")
        await fresh()
        return await store.read(
            lambda cur: views.list_invocations(
                cur,
                live(),
                f,
                after=q.get("after") or None,
                before=q.get("before") or None,
                limit=int_param(q, "limit", 50) or 0,
                count=q.get("count", "") in ("1", "true", "yes"),
                newest_first=order == "desc",
            )
        )

    async def show_invocation(r: Request) -> Any:
        inv_id = r.path_params["id"]
        actions._check_id(inv_id)
        await fresh()
        with_state = r.query_params.get("state", "1") not in ("0", "false", "no")
        body = await store.read(views.show_invocation, live(inv_id), inv_id, with_state)
        if body is None:
            raise NotFound(f"unknown invocation {inv_id}")
        return body

    async def tree(r: Request) -> Any:
        inv_id = r.path_params["id"]
        actions._check_id(inv_id)
        await fresh()
        limit = int_param(r.query_params, "limit", call_tree.MAX_TREE) or 1
        body = await store.read(call_tree.call_tree, live(), inv_id, limit)
        if body is None:
            raise NotFound(f"unknown invocation {inv_id}")
        return body

    async def action(r: Request) -> Any:
        name = r.path_params["action"]
        if name not in actions.ACTIONS:
            raise NotFound(f"unknown action {name!r} (actions: {', '.join(actions.ACTIONS)})")
        return await actions.act(need_engine(name), name, r.path_params["id"])

    async def replay_one(r: Request) -> Any:
        body = await json_object(r)
        return await actions.replay(
            need_engine("replay"), r.path_params["id"], seconds_param(body, "timeout", 10.0)
        )

    async def replay_many(r: Request) -> Any:
        body = await json_object(r)
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise BadRequest('give {"ids": [invocation ids]}')
        if len(ids) > 1000:
            raise BadRequest("replay at most 1000 invocations per request")
        return await actions.replay_many(
            need_engine("replay"), ids, seconds_param(body, "timeout", 10.0)
        )

    async def restart(r: Request) -> Any:
        body = await json_object(r)
        n = body.get("from")
        if not isinstance(n, int) or isinstance(n, bool):
            raise BadRequest('give the entry to restart from: {"from": N}')
        return await actions.restart(
            need_engine("restart"), r.path_params["id"], n, bool(body.get("kill", False))
        )

    async def import_copy(r: Request) -> Any:
        body = await json_object(r)
        copy = PulledCopy.from_json(body.get("copy"))
        need_engine("import")  # the offline app reads a store opened read-only
        return await save_copy(store, copy, bool(body.get("force", False)))

    async def bulk(r: Request) -> Any:
        body = await json_object(r)
        act = body.get("action")
        if act not in actions.ACTIONS:
            raise BadRequest(f"action must be one of {', '.join(actions.ACTIONS)}")
        ids = body.get("ids")
        if ids is None:
            flt = body.get("filter")
            if not isinstance(flt, dict):
                raise BadRequest('give {"action", "ids": [...]} or {"action", "filter": {...}}')
            ids = await _matching_ids(parse_filter(flt))
        elif not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise BadRequest("ids must be a list of invocation ids")
        if body.get("dry_run"):
            return {"action": act, "matched": len(ids), "ids": ids[:1000]}
        return await actions.bulk(need_engine(act), act, ids)

    async def _matching_ids(f: InvocationFilter) -> list[str]:
        await fresh()
        ids: list[str] = []
        after = None
        while len(ids) < _MAX_BULK:
            page = await store.read(
                lambda cur, a=after: views.list_invocations(
                    cur, live(), f, after=a, limit=views.MAX_PAGE
                )
            )
            ids.extend(i["id"] for i in page["invocations"])
            after = page["next"]
            if after is None:
                break
        return ids

    # -- state
    async def state_keys(r: Request) -> Any:
        return await store.read(views.state_keys, r.path_params["service"])

    async def state(r: Request) -> Any:
        service, key = r.path_params["service"], r.path_params["key"]
        if r.method == "POST":
            body = await json_object(r)
            name = body.get("name")
            if not isinstance(name, str):
                raise BadRequest('give {"name": ..., "value": ...} or {"name": ..., "clear": true}')
            if body.get("clear"):
                value = None
            elif "value" in body:
                value = json.dumps(body["value"])
            else:
                raise BadRequest('give the new "value" (any JSON), or "clear": true')
            return await actions.set_state(need_engine("set state"), service, key, name, value)
        inv = r.query_params.get("invocation")
        entry = int_param(r.query_params, "entry")
        if inv:
            actions._check_id(inv)
        elif entry is not None:
            raise BadRequest("entry needs invocation: ?invocation=ID&entry=N")
        await fresh()
        return await store.read(views.state, service, key, inv or None, entry)

    # -- awakeables and promises
    async def pending(_r: Request) -> Any:
        await fresh()
        return await store.read(views.pending_with_schemas, live())

    async def resolve_awakeable(r: Request) -> Any:
        body = await read_body(r, _MAX_BODY)
        text = body.strip() or b"null"
        strict_json(text, "the value")
        return await actions.resolve_awakeable(
            need_engine("resolve"), r.path_params["id"], text.decode("utf-8")
        )

    async def reject_awakeable(r: Request) -> Any:
        body = await json_object(r)
        message, code = rejection(body)
        return await actions.reject_awakeable(
            need_engine("reject"), r.path_params["id"], message, code
        )

    async def promise(r: Request) -> Any:
        body = await json_object(r)
        service, key, name = (body.get(k) for k in ("service", "key", "name"))
        if not (isinstance(service, str) and isinstance(key, str) and isinstance(name, str)):
            raise BadRequest('give {"service", "key", "name"} of the workflow promise')
        if r.path_params["what"] not in ("resolve", "reject"):
            raise NotFound("use /api/promises/resolve or /api/promises/reject")
        eng = need_engine("complete a promise")
        if r.path_params["what"] == "resolve":
            value = json.dumps(body.get("value"))
            return await actions.complete_promise(eng, service, key, name, value)
        message, code = rejection(body)
        return await actions.complete_promise(
            eng, service, key, name, failure=Failure(code, message)
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
        timeout = seconds_param(body, "timeout", MAX_TIMEOUT_S, MAX_TIMEOUT_S)
        if float(body.get("timeout", 0)) > MAX_TIMEOUT_S:
            raise BadRequest(f"timeout is at most {MAX_TIMEOUT_S:g} s (the SQL time limit)")
        await fresh()
        try:
            return await asyncio.to_thread(store.read_sync, run_query, text, limit, timeout)
        except TimeoutError as e:
            raise BadRequest(str(e)) from None
        except duckdb.Error as e:
            raise BadRequest(f"the query failed: {e}") from None

    async def export_list(_r: Request) -> Any:
        return {"tables": await store.read(queries.table_names)}

    async def export_one(r: Request) -> Any:
        table = r.path_params["table"].removesuffix(".parquet")
        await fresh()
        folder = tempfile.mkdtemp(prefix="durable-export-")
        path = os.path.join(folder, f"{table}.parquet")
        try:
            rows = await asyncio.to_thread(store.read_sync, export_table, table, path)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return FileResponse(
            path,
            media_type="application/vnd.apache.parquet",
            filename=f"{table}.parquet",
            headers={"X-Rows": str(rows)},
            background=BackgroundTask(shutil.rmtree, folder, True),
        )

    def get(path: str, fn: Handler) -> Route:
        return Route(path, endpoint(fn, ("GET",)), methods=ALL_METHODS)

    def post(path: str, fn: Handler) -> Route:
        return Route(path, endpoint(fn, ("POST",)), methods=ALL_METHODS)

    return [
        get("/api/services", services),
        get("/api/openapi.json", openapi_doc),
        get("/api/invocations", list_invocations),
        post("/api/invocations/bulk", bulk),
        post("/api/invocations/import", import_copy),
        get("/api/invocations/{id}", show_invocation),
        get("/api/invocations/{id}/tree", tree),
        post("/api/invocations/{id}/replay", replay_one),
        post("/api/invocations/{id}/restart", restart),
        post("/api/invocations/{id}/{action}", action),
        post("/api/replay", replay_many),
        get("/api/state/{service}", state_keys),
        Route(
            "/api/state/{service}/{key:path}",
            endpoint(state, ("GET", "POST")),
            methods=ALL_METHODS,
        ),
        get("/api/awakeables", pending),
        post("/api/awakeables/{id}/resolve", resolve_awakeable),
        post("/api/awakeables/{id}/reject", reject_awakeable),
        post("/api/promises/{what:str}", promise),
        post("/api/sql", sql),
        get("/api/export", export_list),
        get("/api/export/{table}", export_one),
    ]


def rejection(body: dict[str, Any]) -> tuple[str, int]:
    message = body.get("message", "rejected")
    code = body.get("code", 500)
    if not isinstance(message, str) or not isinstance(code, int) or isinstance(code, bool):
        raise BadRequest('give {"message": "why", "code": 500}')
    if not 400 <= code <= 599:
        raise BadRequest("code must be an HTTP error status (400 to 599)")
    return message, code


async def _not_found(request: Request) -> Response:
    return json_error(404, f"unknown admin API path {request.url.path}")


not_found_route = Route("/api/{rest:path}", _not_found, methods=["GET", "POST", "PUT", "DELETE"])


def offline_app(store: Store) -> Starlette:
    """The read endpoints over a store opened read-only (no runtime, no engine)."""

    async def health(_r: Request) -> Response:
        return JSONResponse({"status": "offline", "store": store.path})

    return Starlette(
        routes=[Route("/health", health), *routes(store, None, {}), not_found_route],
        exception_handlers={HTTPException: http_error},
    )
