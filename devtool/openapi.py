"""An OpenAPI 3.1 document of the ingress, from the services the worker discovered.

Each handler gets its call path and its ``/send`` path (Restate's conventions), with the
JSON schema of its input and output taken from the handler's type hints.
"""

from __future__ import annotations

from typing import Any

from durable.messages import HandlerInfo, ServiceInfo

__all__ = ["openapi"]

_ERROR = {
    "type": "object",
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "source": {"type": "string", "enum": ["ingress", "invocation"]},
    },
    "required": ["code", "message"],
}
_SEND = {
    "type": "object",
    "properties": {
        "invocationId": {"type": "string"},
        "status": {"type": "string", "enum": ["Accepted", "PreviouslyAccepted"]},
        "executionTime": {"type": "string", "format": "date-time"},
    },
}


def _errors() -> dict[str, Any]:
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "400": {"description": "Bad JSON or input that does not fit the handler", **err},
        "404": {"description": "Unknown service, handler or key", **err},
        "409": {"description": "Cancelled, or a workflow main handler run again", **err},
        "413": {"description": "Request body over the limit", **err},
        "500": {"description": "The handler failed with a terminal error", **err},
    }


def _operation(s: ServiceInfo, h: HandlerInfo, send: bool) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
        }
    ]
    if s.kind != "service":
        params.insert(
            0,
            {
                "name": "key",
                "in": "path",
                "required": True,
                "description": "The object key or workflow id (URL-encoded)",
                "schema": {"type": "string"},
            },
        )
    if send:
        params.append(
            {
                "name": "delay",
                "in": "query",
                "required": False,
                "description": "Start later: 500ms, 10s, 1m30s, 2h",
                "schema": {"type": "string"},
            }
        )
    op: dict[str, Any] = {
        "operationId": f"{s.name}_{h.name}" + ("_send" if send else ""),
        "tags": [s.name],
        "summary": f"{'Send to' if send else 'Call'} {s.name}/{h.name} ({h.kind})",
        "parameters": params,
        "responses": {
            **(
                {
                    "202": {
                        "description": "Accepted: the invocation id",
                        "content": {"application/json": {"schema": _SEND}},
                    }
                }
                if send
                else {
                    "200": {
                        "description": "The handler's output (None: an empty body)",
                        "content": {"application/json": {"schema": h.output_schema or {}}},
                    }
                }
            ),
            **_errors(),
        },
    }
    if h.input_type != "none":
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": h.input_schema or {}}},
        }
    return op


def openapi(services: list[ServiceInfo], ingress_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI document of the ingress for ``services``."""
    paths: dict[str, Any] = {}
    for s in sorted(services, key=lambda s: s.name):
        for h in s.handlers:
            base = f"/{s.name}/{h.name}" if s.kind == "service" else f"/{s.name}/{{key}}/{h.name}"
            paths[base] = {"post": _operation(s, h, send=False)}
            paths[base + "/send"] = {"post": _operation(s, h, send=True)}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "durable ingress", "version": "1"},
        "paths": paths,
        "components": {"schemas": {"Error": _ERROR}},
    }
    if ingress_url:
        doc["servers"] = [{"url": ingress_url}]
    return doc
