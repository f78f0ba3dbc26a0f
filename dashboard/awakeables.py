"""Pending awakeables and workflow promises, resolved or rejected by hand.

``GET /awakeables`` lists them with who waits on each. Each has a JSON editor
prefilled from the expected type (the JSON schema the SDK records in the entry when
the handler gives ``type_hint=``); the browser checks the JSON before sending, and the
server checks it again. ``POST /awakeables/{id}/resolve|reject`` and
``POST /promises/resolve|reject`` answer with the refreshed list and a message.
"""

from __future__ import annotations

from typing import Any

from durable.devtool.errors import BadRequest, RequestError
from durable.messages import Failure
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._core import Dashboard, Flash, form, json_text, small_int
from ._forms import skeleton_json
from ._render import fingerprint, is_fragment_request

__all__ = ["routes"]


def _json_text(text: str) -> str:
    return json_text(text, "the value")


def _rejection(data: Any) -> tuple[str, int]:
    message = str(data.get("message") or "").strip() or "rejected"
    try:
        code = small_int(data.get("code"), 500)
    except ValueError:
        raise BadRequest("the code must be a number (an HTTP error status)") from None
    if not 400 <= code <= 599:
        raise BadRequest("the code must be an HTTP error status (400 to 599)")
    return message, code


def _type_label(schema: dict | None) -> str:
    if not schema:
        return "any JSON (the handler gave no type_hint)"
    return str(schema.get("title") or schema.get("type") or "JSON")


def routes(d: Dashboard) -> list[Route]:
    async def context(flash: Flash | None = None) -> dict[str, Any]:
        pending = await d.source.pending()
        for items in pending.values():
            for p in items:
                p["prefill"] = skeleton_json(p["schema"])
                p["type_label"] = _type_label(p["schema"])
        v = fingerprint([[(p["id"], p["status"]) for p in items] for items in pending.values()])
        return {"pending": pending, "flash": flash, "v": v}

    async def page(request: Request) -> Response:
        ctx = await context()
        if is_fragment_request(request) and request.query_params.get("v") == ctx["v"]:
            return Response(status_code=204)
        return d.render(request, "awakeables", ctx)

    async def done(request: Request, flash: Flash, status: int = 200) -> Response:
        ctx = await context(flash)
        return d.render(request, "awakeables", ctx, 200 if is_fragment_request(request) else status)

    async def awakeable(request: Request) -> Response:
        awk_id, what = request.path_params["id"], request.path_params["what"]
        data = await form(request)
        try:
            if what == "resolve":
                result = await d.source.resolve_awakeable(awk_id, _json_text(data.get("value", "")))
                verb = "resolved"
            elif what == "reject":
                message, code = _rejection(data)
                result = await d.source.reject_awakeable(awk_id, message, code)
                verb = "rejected"
            else:
                raise BadRequest("use resolve or reject")
        except RequestError as e:
            return await done(request, Flash("error", e.message), e.status)
        waiter = result.get("invocation_id")
        goes_on = f"; invocation {waiter} goes on" if waiter else ""
        return await done(request, Flash("ok", f"Awakeable {awk_id} {verb}{goes_on}."))

    async def promise(request: Request) -> Response:
        what = request.path_params["what"]
        data = await form(request)
        service, key, name = (str(data.get(k, "")) for k in ("service", "key", "name"))
        try:
            d.refuse("promises")
            if what == "resolve":
                await d.source.complete_promise(
                    service, key, name, _json_text(data.get("value", ""))
                )
                verb = "resolved"
            elif what == "reject":
                message, code = _rejection(data)
                await d.source.complete_promise(service, key, name, failure=Failure(code, message))
                verb = "rejected"
            else:
                raise BadRequest("use resolve or reject")
        except RequestError as e:
            return await done(request, Flash("error", e.message), e.status)
        return await done(request, Flash("ok", f"Promise {name!r} of {service}/{key} {verb}."))

    return [
        Route("/awakeables", page),
        Route("/awakeables/{id}/{what}", awakeable, methods=["POST"]),
        Route("/promises/{what}", promise, methods=["POST"]),
    ]
