"""Services and handlers the worker found, the last reload or import error, and a form
to invoke each handler, generated from its input's JSON schema.

``GET /services`` lists them; ``POST /services/{service}/{handler}`` invokes one (as
the ingress would, with the header ``x-durable-source: dashboard``): a call waits a few
seconds for the output, a send returns at once; both link to the invocation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from durable.devtool.errors import BadRequest, NotFound, RequestError
from durable.devtool.ingress import MAX_KEY
from durable.devtool.parsing import parse_duration
from durable.messages import HandlerInfo, ServiceInfo
from durable.serde import serialize
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._core import Dashboard, error_message, form
from ._forms import input_form, value_from_form
from ._render import fingerprint, is_fragment_request

__all__ = ["routes"]

CALL_WAIT_S = 5.0


def _find(
    services: list[ServiceInfo], service: str, handler: str
) -> tuple[ServiceInfo, HandlerInfo]:
    s = next((s for s in services if s.name == service), None)
    if s is None:
        raise NotFound(f"unknown service {service!r}")
    h = s.handler(handler)
    if h is None:
        raise NotFound(f"service {service!r} has no handler {handler!r}")
    return s, h


def _has_input(h: HandlerInfo) -> bool:
    """A schema, or (a Restate handler taking any JSON has none) an input type but "none"."""
    return h.input_schema is not None or h.input_type not in ("none", "")


def routes(d: Dashboard) -> list[Route]:
    def handler_forms(s: ServiceInfo) -> list[dict[str, Any]]:
        return [{"h": h, "form": input_form(h.input_schema, _has_input(h))} for h in s.handlers]

    async def page(request: Request) -> Response:
        view = await d.source.services()
        services, error, worker = view.services, view.error, view.worker
        v = fingerprint([[dataclasses.asdict(s) for s in services], error, worker])
        if is_fragment_request(request) and request.query_params.get("v") == v:
            return Response(status_code=204)
        return d.render(
            request,
            "services",
            {
                "services": [{"s": s, "handlers": handler_forms(s)} for s in services],
                "error": error,
                "info": d.info,
                "worker": worker,
                "invoke_off": d.source.unavailable.get("invoke"),
                "v": v,
            },
        )

    async def banner(request: Request) -> Response:
        """The every-page banner while the app fails to load (polled; 204 if unchanged)."""
        await d.source.check()
        v = fingerprint([d.source.app_error(), d.source.outage()])
        if is_fragment_request(request) and request.query_params.get("v") == v:
            return Response(status_code=204)
        return d.render(request, "app_banner", {})

    async def invoke(request: Request) -> Response:
        service, handler = request.path_params["service"], request.path_params["handler"]
        data = await form(request)
        ctx: dict[str, Any] = {"service": service, "handler": handler, "error": None}
        status = 200
        try:
            d.refuse("invoke")
            s, h = _find((await d.source.services()).services, service, handler)
            value = value_from_form(input_form(h.input_schema, _has_input(h)), data)
            key = data.get("key") if s.kind != "service" else None
            if s.kind != "service" and not key:
                raise BadRequest(
                    f"{service} is {'a virtual object' if s.kind == 'object' else 'a workflow'}: "
                    "give the key"
                )
            if key is not None and len(key) > MAX_KEY:
                raise BadRequest(f"the key is {len(key)} characters long: at most {MAX_KEY}")
            send = data.get("mode") == "send"
            delay = parse_duration(data["delay"]) if send and data.get("delay") else 0.0
            got = await d.source.invoke(
                service,
                handler,
                key,
                serialize(value).encode("utf-8"),
                (data.get("idempotency_key") or "").strip() or None,
                delay,
                send,
                CALL_WAIT_S,
            )
            ctx.update(inv_id=got.inv_id, existing=got.existing, sent=send, input=value)
            if not send:
                ctx["outcome"] = got if got.done else None
                ctx["output"] = got.output
        except (RequestError, ValueError) as e:
            ctx["error"] = error_message(e)
            status = e.status if isinstance(e, RequestError) else 400
        return d.render(
            request, "invoke_result", ctx, 200 if is_fragment_request(request) else status
        )

    return [
        Route("/services", page),
        Route("/app-banner", banner),
        Route("/services/{service}/{handler}", invoke, methods=["POST"]),
    ]
