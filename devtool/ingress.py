"""The ingress: Restate's HTTP conventions on starlette.

``POST /{Service}/{handler}``, ``POST /{Object}/{key}/{handler}``,
``POST /{Workflow}/{id}/run``, each with a ``/send`` suffix for one-way calls
(``?delay=10s``), the ``Idempotency-Key`` header, ``GET /restate/invocation/{id}/attach``
and ``/output`` (or ``/restate/invocation/{service}[/{key}]/{handler}/{idempotency-key}/...``),
``GET /restate/workflow/{name}/{id}/attach`` and ``/output``,
``POST /restate/awakeables/{id}/resolve`` and ``/reject``. Answers carry
``x-restate-id``; errors are JSON ``{"code", "message", "source"}`` with the status that
says what went wrong. Where Restate 1.7 answers differently, ``docs/restate-compat.md``
says how and why.

Paths are split on the raw (still percent-encoded) path, so object keys may hold
slashes, spaces and any unicode when URL-encoded.

Every request is checked before anything is logged or held in memory, and a request
that fails a check is a 4xx that changes nothing:

- ``Host`` must name the runtime (a loopback name or the ``--host`` it was bound to),
  and a browser page of another origin (``Origin``, else ``Referer``) is refused with a
  403: see :mod:`durable.devtool.hostguard`. Clients that send no ``Origin`` (curl,
  httpx, SDK clients) are not browsers and pass.
- A body must be JSON the journal can store (:func:`durable.serde.parse_strict`: no
  lone surrogate, no ``NaN``/``Infinity``/``1e400``, nesting at most
  ``durable.serde.MAX_DEPTH`` deep).
- Headers (stored with the invocation): at most :data:`MAX_HEADERS` of them,
  :data:`MAX_HEADER_BYTES` in all.
- ``?delay=`` at most :data:`MAX_DELAY_S` (ten years); keys at most :data:`MAX_KEY`
  characters.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from durable.ids import idempotency_scope
from durable.messages import Failure
from durable.serde import UnstorableValue, parse_strict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .engine import Engine, Outcome
from .errors import BadRequest, NotFound, RequestError
from .hostguard import host_allowed, origin_verdict
from .parsing import parse_duration, read_body

log = logging.getLogger("durable.ingress")

__all__ = [
    "create_ingress",
    "error_response",
    "split_path",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_KEY",
]

MAX_HEADERS = 100
MAX_HEADER_BYTES = 64 * 1024
MAX_KEY = 4096

_SKIP_HEADERS = {"content-length", "host", "connection", "transfer-encoding", "keep-alive"}


def error_response(
    status: int, message: str, source: str = "ingress", inv_id: str | None = None
) -> JSONResponse:
    """An error as Restate's ingress words it: ``{"code", "message", "source"}``, where
    ``source`` is ``ingress`` (the request was refused) or ``invocation`` (the handler
    failed), also sent as the ``x-restate-error-source`` header."""
    headers = {"x-restate-error-source": source}
    if inv_id is not None:
        headers["x-restate-id"] = inv_id
    return JSONResponse(
        {"code": status, "message": message, "source": source},
        status_code=status,
        headers=headers,
    )


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def split_path(raw: bytes) -> list[str]:
    """The segments of a raw (still percent-encoded) request path, each decoded.

    Splitting before decoding lets a segment (an object key) hold ``/`` as ``%2F``. A
    segment must decode to UTF-8 text: two different malformed keys must never become
    the same key, so a bad escape or invalid UTF-8 is a 400.
    """
    path = raw.split(b"?", 1)[0]
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(
            "the request path is not UTF-8: URL-encode keys (UTF-8, then %XX)"
        ) from None
    text = text.strip("/")
    if not text:
        return []
    parts = []
    for segment in text.split("/"):
        if _BAD_ESCAPE.search(segment):
            raise BadRequest(
                f"malformed percent-encoding in path segment {segment!r}: "
                "write % as %25 and other characters as %XX"
            )
        try:
            parts.append(unquote(segment, errors="strict"))
        except UnicodeDecodeError:
            raise BadRequest(
                f"path segment {segment!r} does not decode to UTF-8 text: "
                "percent-encode the UTF-8 bytes of the key"
            ) from None
    return parts


def _json_text(body: bytes) -> str:
    if not body.strip():
        return "null"
    try:
        text = body.decode("utf-8")
        parse_strict(text)
    except UnstorableValue as e:
        raise BadRequest(f"the request body cannot be accepted: {e.message}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(f"the request body is not valid JSON: {e}") from None
    return text


def _stored_headers(request: Request) -> dict[str, str]:
    raw = request.scope["headers"]
    if len(raw) > MAX_HEADERS:
        raise BadRequest(
            f"{len(raw)} headers: at most {MAX_HEADERS} are accepted (they are stored with "
            "the invocation)"
        )
    size = sum(len(k) + len(v) for k, v in raw)
    if size > MAX_HEADER_BYTES:
        raise BadRequest(
            f"the headers hold {size} bytes: at most {MAX_HEADER_BYTES} are accepted (they "
            "are stored with the invocation)"
        )
    return {k: v for k, v in request.headers.items() if k.lower() not in _SKIP_HEADERS}


def _refused(request: Request, bind_host: str) -> Response | None:
    """A 403 for a request that names another site or comes from another site's page."""
    headers = request.headers
    if not host_allowed(headers.get("host", ""), bind_host):
        return error_response(
            403,
            "this runtime answers only to its own address (127.0.0.1 or localhost): the "
            "Host header names another site",
        )
    if ("origin" in headers or "referer" in headers) and origin_verdict(
        headers, request.scope.get("scheme", "http")
    ) is False:
        return error_response(
            403,
            "cross-origin request refused: a web page of another site cannot call the "
            "ingress (clients outside a browser send no Origin and are welcome)",
        )
    return None


def outcome_response(outcome: Outcome) -> Response:
    """The answer of a finished invocation, as Restate gives it: its output with the
    ``x-restate-id`` header; ``None`` is a 200 with an empty body and no content type."""
    inv_id = outcome.invocation_id
    if outcome.failure is not None:
        f = outcome.failure
        status = f.code if 400 <= f.code <= 599 else 500
        return JSONResponse(
            {"code": f.code, "message": f.message, "source": "invocation"},
            status_code=status,
            headers={"x-restate-id": inv_id, "x-restate-error-source": "invocation"},
        )
    if outcome.output is None or outcome.output == "null":
        return Response(b"", headers={"x-restate-id": inv_id})
    return Response(outcome.output, media_type="application/json", headers={"x-restate-id": inv_id})


def _execution_time(epoch_s: float) -> str:
    """A time as Restate's 202 writes ``executionTime``: RFC 3339, UTC, nanoseconds."""
    t = datetime.fromtimestamp(epoch_s, tz=UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond * 1000:09d}Z"


async def _unless_gone(request: Request, engine: Engine, inv_id: str, wait: bool) -> Outcome | None:
    """The outcome (waiting for it with ``wait``), but raise ClientGone once the client
    hangs up: a call or an attach that waits for days must not hold memory after its
    client went away."""
    got = await engine.outcome_or_waiter(inv_id, wait)
    if not isinstance(got, asyncio.Future):
        return got
    if not got.done():

        async def hung_up() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            if not got.done():
                got.cancel()

        watcher = asyncio.get_running_loop().create_task(hung_up())
        try:
            await _quietly(got)
        finally:
            watcher.cancel()
            engine.drop_waiter(inv_id, got)
    if got.cancelled():
        raise ClientGone()
    return got.result()


async def _quietly(fut: asyncio.Future) -> None:
    """Wait until ``fut`` is done, however it ends (its result is read afterwards)."""
    try:
        await fut
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not fut.cancelled() or (task is not None and task.cancelling()):
            raise  # this task itself is cancelled (shutdown), not just the client gone


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


def create_ingress(
    engine: Engine, max_body: int = 10 * 1024 * 1024, bind_host: str = "127.0.0.1"
) -> ASGIApp:
    """The ingress ASGI app over ``engine``, served on ``bind_host``."""

    async def dispatch(request: Request) -> Response:
        degraded = engine.store.degraded  # a full disk, a damaged file: no new work
        if degraded is not None and request.method == "POST":
            return error_response(503, f"the runtime takes no new work now: {degraded}")
        try:
            return await _dispatch(request)
        except RequestError as e:
            return error_response(e.status, e.message)
        except ClientGone:  # nobody reads this answer
            return Response(status_code=499)

    async def _dispatch(request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        parts = split_path(raw)
        method = request.method
        if parts[:1] == ["restate"]:
            return await _restate(request, parts[1:], method)
        if method != "POST":
            return error_response(405, f"use POST to invoke a handler (got {method})")
        if len(parts) < 2:
            raise BadRequest("bad path: call /{Service}/{handler} or /{Object}/{key}/{handler}")
        service = parts[0]
        info = engine.services.get(service)
        send = parts[-1] == "send"
        rest = parts[1:-1] if send else parts[1:]
        handlers = {h.name for h in info.handlers} if info is not None else set()
        if info is None or info.kind == "service":
            if len(rest) != 1:
                if info is None:
                    await engine.submit(
                        service, rest[0] if rest else "", None, "null"
                    )  # raises 404
                if len(rest) == 2 and rest[1] in handlers:
                    raise BadRequest(
                        f"{service} is a service, it takes no key: call /{service}/{rest[1]}"
                    )
                raise NotFound(f"unknown path for service {service}: use /{service}/{{handler}}")
            key, handler = None, rest[0]
        else:
            if len(rest) != 2:
                what = "virtual object" if info.kind == "object" else "workflow"
                if len(rest) == 1 and rest[0] in handlers:
                    raise BadRequest(
                        f"{service} is a {what}: call it with a key, as "
                        f"/{service}/{{key}}/{rest[0]}"
                    )
                raise NotFound(
                    f"{service} is a {what}: use /{service}/{{key}}/{{handler}} "
                    "(URL-encode a key that contains slashes, as %2F)"
                )
            key, handler = rest
            if len(key) > MAX_KEY:
                raise BadRequest(f"the key is {len(key)} characters long: at most {MAX_KEY}")
        headers = _stored_headers(request)
        body = await read_body(request, max_body)
        input_json = _json_text(body)
        idem = request.headers.get("idempotency-key") or None
        delay = 0.0
        if "delay" in request.query_params:
            if not send:
                raise BadRequest("?delay only applies to one-way calls: add /send to the path")
            delay = parse_duration(request.query_params["delay"])
        hinfo = info.handler(handler) if info else None
        if hinfo is not None:
            if hinfo.input_type == "none" and body.strip():
                raise BadRequest(
                    f"{service}/{handler} takes no input: send an empty body (got "
                    f"{len(body)} bytes)"
                )
            if hinfo.kind == "workflow" and idem is not None:
                raise BadRequest(
                    "cannot use the idempotency key with a workflow's main handler: the "
                    f"workflow id ({key!r}) already makes it run once"
                )
        inv_id, existing = await engine.submit(
            service, handler, key, input_json, headers, idem, delay, durable_ack=send
        )
        if send:
            status = "PreviouslyAccepted" if existing else "Accepted"
            answer: dict[str, str] = {"invocationId": inv_id}
            if "delay" in request.query_params and not existing:
                answer["executionTime"] = _execution_time(engine.clock.now() + delay)
            answer["status"] = status
            return JSONResponse(answer, status_code=202, headers={"x-restate-id": inv_id})
        if existing and hinfo is not None and hinfo.kind == "workflow":
            # as Restate: a second call of the main handler is refused, not attached
            # (GET /restate/workflow/{name}/{id}/attach waits for the first one's result)
            return error_response(
                409, "the workflow method was already invoked", "invocation", inv_id
            )
        if engine.waits_for_app() and engine.live_status(inv_id) is not None:
            # Restate keeps the request open while it cannot run: so do we, and the
            # console says why at once (see docs/architecture.md, "Never hang in silence")
            engine.on_event("waits_for_app", {"id": inv_id, "target": f"{service}/{handler}"})
        outcome = await _unless_gone(request, engine, inv_id, True)
        assert outcome is not None
        return outcome_response(outcome)

    async def _restate(request: Request, parts: list[str], method: str) -> Response:
        if parts == ["health"]:
            return JSONResponse({"status": "ok"})
        if len(parts) == 3 and parts[0] == "awakeables" and parts[2] in ("resolve", "reject"):
            if method != "POST":
                return error_response(405, "use POST to resolve or reject an awakeable")
            body = await read_body(request, max_body)
            if parts[2] == "resolve":
                await engine.resolve_awakeable(parts[1], _json_text(body), None)
            else:
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise BadRequest("the rejection reason must be UTF-8 text") from None
                message = text
                stripped = text.strip()
                if stripped:  # a JSON string, or plain text; any other JSON value is refused
                    try:
                        value: Any = parse_strict(stripped)
                    except UnstorableValue as e:
                        raise BadRequest(f"the rejection body: {e.message}") from None
                    except ValueError:
                        value = text
                    if not isinstance(value, str):
                        raise BadRequest(
                            "the rejection body must be a message (plain text or a JSON "
                            "string), not a JSON " + type(value).__name__
                        )
                    message = value
                await engine.resolve_awakeable(parts[1], None, Failure(500, message or "rejected"))
            return Response(status_code=202)
        if 3 <= len(parts) <= 6 and parts[0] == "invocation" and parts[-1] in ("attach", "output"):
            if method != "GET":
                return error_response(405, "use GET")
            inv_id = parts[1] if len(parts) == 3 else await _by_idempotency_key(parts[1:-1])
            outcome = await _unless_gone(request, engine, inv_id, parts[-1] == "attach")
            if outcome is None:
                return error_response(
                    470, f"invocation {inv_id} exists but has not completed yet", inv_id=inv_id
                )
            return outcome_response(outcome)
        if len(parts) == 4 and parts[0] == "workflow" and parts[3] in ("attach", "output"):
            inv_id = await engine.workflow_invocation(parts[1], parts[2])
            outcome = await _unless_gone(request, engine, inv_id, parts[3] == "attach")
            if outcome is None:
                return error_response(
                    470, f"workflow {parts[1]}/{parts[2]} has not completed yet", inv_id=inv_id
                )
            return outcome_response(outcome)
        raise NotFound(f"unknown path /restate/{'/'.join(parts)}")

    async def _by_idempotency_key(parts: list[str]) -> str:
        """The invocation ``[service, key?, handler, idempotency key]`` names (as the
        attach and output paths by idempotency key give them)."""
        service, handler, idem = parts[0], parts[-2], parts[-1]
        key = parts[1] if len(parts) == 4 else None
        info = engine.services.get(service)
        if info is not None and (info.kind == "service") != (key is None):
            raise BadRequest(
                f"{service} is a {info.kind}: its invocations are named as "
                + (
                    f"/restate/invocation/{service}/{{handler}}/{{idempotency-key}}"
                    if key is not None
                    else f"/restate/invocation/{service}/{{key}}/{{handler}}/{{idempotency-key}}"
                )
            )
        found = await engine.idempotency.lookup(
            idempotency_scope(service, handler, key, False), idem
        )
        if found is None:
            raise NotFound(
                f"no invocation of {service}/{key + '/' if key else ''}{handler} has the "
                f"idempotency key {idem!r}"
            )
        return found

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # One handler for every path: starlette's Request and Response without its router
        # and middleware stack, which cost the runtime ~20 us of CPU per request.
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        request = Request(scope, receive)
        try:
            response = _refused(request, bind_host) or await dispatch(request)
        except Exception:
            log.exception("ingress failed on %s %s", scope["method"], scope["path"])
            response = error_response(500, "the runtime failed on this request: see its log")
        await response(scope, receive, send)

    return app
