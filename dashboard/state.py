"""The state browser: objects and workflows, their keys, and each key's state, editable.

``GET /state`` lists the objects and workflows; ``?service=S`` their keys holding
state (``prefix`` narrows them); ``&key=K`` that key's entries, each with a JSON editor.
Keys travel in the query string, never in the path, so any key (slashes, dots, spaces)
round-trips. ``POST /state/set`` (service, key, name, value) and ``POST /state/clear``
write through the admin API's action, like ``durable state set``.
"""

from __future__ import annotations

from typing import Any

from durable.devtool.errors import BadRequest, RequestError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._core import Dashboard, Flash, form, json_text
from ._render import is_fragment_request, urlq

__all__ = ["routes"]

MAX_KEYS_SHOWN = 500


def routes(d: Dashboard) -> list[Route]:
    async def context(
        service: str, key: str | None, prefix: str = "", flash: Flash | None = None
    ) -> dict[str, Any]:
        view = await d.source.services()
        keyed = [s for s in view.services if s.kind in ("object", "workflow")]
        ctx: dict[str, Any] = {
            "services": keyed,
            "service": service,
            "key": key,
            "prefix": prefix,
            "flash": flash,
            "keys": None,
            "more_keys": 0,
            "state": None,
            "edit_off": d.source.unavailable.get("state_edit"),
        }
        if service:
            keys = (await d.source.state_keys(service))["keys"]
            if prefix:
                keys = [k for k in keys if k["key"].startswith(prefix)]
            ctx["keys"] = keys[:MAX_KEYS_SHOWN]
            ctx["more_keys"] = max(0, len(keys) - MAX_KEYS_SHOWN)
            ctx["key_count"] = len(keys)
        if service and key is not None:
            ctx["state"] = (await d.source.state(service, key))["state"]
        return ctx

    async def page(request: Request) -> Response:
        q = request.query_params
        service = q.get("service", "")
        key = q.get("key") if "key" in q else None
        return d.render(request, "state", await context(service, key, q.get("prefix", "")))

    async def write(request: Request) -> Response:
        what = request.path_params["what"]
        data = await form(request)
        service, key, name = (str(data.get(k, "")) for k in ("service", "key", "name"))
        try:
            d.refuse("state_edit")
            if what == "set":
                text = json_text(str(data.get("value", "")), f"the value of {name!r}")
                await d.source.set_state(service, key, name.strip(), text)
                flash = Flash("ok", f"Set {name!r} of {service}/{key}.")
            elif what == "clear":
                await d.source.set_state(service, key, name, None)
                flash = Flash("ok", f"Cleared {name!r} of {service}/{key}.")
            else:
                raise BadRequest("use /state/set or /state/clear")
        except RequestError as e:
            ctx = await context(service, key, flash=Flash("error", e.message))
            status = 200 if is_fragment_request(request) else e.status
            return d.render(request, "state", ctx, status)
        if not is_fragment_request(request):
            return Response(
                status_code=303, headers={"Location": "/state?" + urlq(service=service, key=key)}
            )
        return d.render(request, "state", await context(service, key, flash=flash))

    return [
        Route("/state", page),
        Route("/state/{what}", write, methods=["POST"]),
    ]
