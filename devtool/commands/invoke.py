"""`durable invoke` (call a handler through the ingress) and `durable services`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ._common import JsonOpt, RestateOpt, UrlOpt, emit_json, fail, out, seg, session

__all__ = ["invoke", "services"]


def invoke(
    target: Annotated[
        str, typer.Argument(metavar="SERVICE/HANDLER", help="What to call, e.g. Greeter/greet.")
    ],
    input_: Annotated[
        str | None,
        typer.Argument(metavar="INPUT", help="The input as JSON (default: no input, null)."),
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="The object key or workflow id.")] = None,
    send: Annotated[
        bool, typer.Option("--send", help="One-way: print the invocation id, do not wait.")
    ] = False,
    delay: Annotated[
        str | None, typer.Option("--delay", help="With --send: start later (500ms, 10s, 1m).")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Send an Idempotency-Key header.")
    ] = None,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Call a handler through the runtime's ingress (or a Restate cluster's) and print its output."""
    service, sep, handler = target.partition("/")
    if not sep or not service or not handler or "/" in handler:
        fail(
            f"give SERVICE/HANDLER, e.g. Greeter/greet (got {target!r}); an object key goes in --key"
        )
    if delay is not None and not send:
        fail("--delay only applies to one-way sends: add --send")
    body = (input_ if input_ is not None else "").encode()
    if input_ is not None:
        try:
            json.loads(input_)
        except ValueError:
            fail(f"INPUT must be JSON, e.g. '\"Ann\"' or '{{\"n\": 1}}' (got {input_!r})")
    with session(url, None, True, "invoke", restate) as c:
        ingress = c.ingress_url
        cluster = c.cluster
    if not ingress:
        fail(f"the runtime at {c.url} does not say where its ingress is")
    ingress = _reachable(ingress, c.url)
    path = f"/{seg(service)}" + (f"/{seg(key)}" if key is not None else "") + f"/{seg(handler)}"
    if send:
        path += "/send"
    import httpx

    headers = {"content-type": "application/json"}
    if cluster and not body:  # Restate refuses a content type on a handler with no input
        headers = {}
    if idempotency_key:
        headers["idempotency-key"] = idempotency_key
    try:
        r = httpx.post(
            ingress + path,
            content=body,
            headers=headers,
            params={"delay": delay} if delay else None,
            timeout=httpx.Timeout(None, connect=5.0),
        )
    except httpx.HTTPError as e:
        fail(f"cannot reach the ingress at {ingress}: {e}")
    answer: Any = None  # a handler's None: an empty 200
    try:
        if r.content:
            answer = r.json()
    except ValueError:
        answer = r.text
    if r.status_code >= 400:
        message = answer.get("message") if isinstance(answer, dict) else str(answer)
        if key is None and "is keyed" in str(message):
            fail(f"{service} is a virtual object or workflow: give its key with --key")
        fail(f"{service}/{handler} failed ({r.status_code}): {message}")
    if json_:
        emit_json(answer)
    elif send:
        out.print(f"{answer['invocationId']} ({answer['status']})")
    else:
        out.print(json.dumps(answer, indent=2, ensure_ascii=False), markup=False)


def _reachable(ingress: str, admin_url: str) -> str:
    """The ingress URL as this machine reaches it: a runtime elsewhere (``--url``) that
    binds a loopback or wildcard address is reached at the admin URL's host."""
    from urllib.parse import urlsplit

    i, a = urlsplit(ingress), urlsplit(admin_url)
    local = {"127.0.0.1", "localhost", "0.0.0.0", "::1", "::"}
    if i.hostname in local and a.hostname and a.hostname not in local:
        host = f"[{a.hostname}]" if ":" in a.hostname else a.hostname
        return f"{i.scheme}://{host}:{i.port}"
    return ingress


def services(
    openapi: Annotated[
        bool, typer.Option("--openapi", help="Print the ingress's OpenAPI document instead.")
    ] = False,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List the services, objects and workflows of the running app, with their handlers."""
    with session(url, None, True, "services", restate) as c:
        if openapi:
            emit_json(c.get("/api/openapi.json"))
            return
        r = c.get("/api/services")
    if json_:
        emit_json(r)
        return
    if r.get("error"):
        out.print(f"the app failed to load: {escape(r['error'].splitlines()[0])}")
    t = Table(box=None, pad_edge=False)
    for col in ("SERVICE", "KIND", "HANDLER", "HANDLER KIND", "INPUT", "OUTPUT"):
        t.add_column(col, overflow="fold")
    for s in r["services"]:
        for i, h in enumerate(s["handlers"]):
            t.add_row(
                escape(s["name"]) if i == 0 else "",
                s["kind"] if i == 0 else "",
                escape(h["name"]),
                h["kind"],
                escape(h["input_type"]),
                escape(h["output_type"]),
            )
    out.print(t)
    if r.get("ingress_url"):
        out.print(f"ingress: {r['ingress_url']}")
