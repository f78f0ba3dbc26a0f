"""`durable deploy`: register a deployment (``durable serve``) with a Restate cluster.

One call to Restate's admin API, ``POST /deployments {"uri", "force", "use_http_11"}``;
Restate then calls the deployment's ``/discover`` and answers with the services it found.
Its refusals (checked against restate-server 1.7) become messages that say what to do:
409 with ``META0006`` for a breaking change, 500 with ``META0003`` when Restate cannot
reach or understand the deployment, 4xx for a request it cannot parse.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.markup import escape
from rich.table import Table

from ._common import JsonOpt, emit_json, fail, out

__all__ = ["deploy", "check_url", "summary"]

# Restate's names for service and handler types, as `durable services` spells them.
_SERVICE_KINDS = {"Service": "service", "VirtualObject": "object", "Workflow": "workflow"}
_HANDLER_KINDS = {"Exclusive": "exclusive", "Shared": "shared", "Workflow": "workflow"}


def deploy(
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL",
            help="The deployment as Restate reaches it, e.g. http://app-host:9080 "
            "(what `durable serve` prints).",
        ),
    ],
    admin: Annotated[
        str,
        typer.Option(
            "--admin",
            envvar="DURABLE_RESTATE_URL",
            help="Restate's admin API, e.g. http://restate:9070.",
            show_default=False,
        ),
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace what Restate knows, even a breaking change (and re-discover a URL "
            "registered before).",
        ),
    ] = False,
    http1: Annotated[
        bool,
        typer.Option("--http1", help="The deployment serves HTTP/1.1 (`durable serve --http1`)."),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Register a deployment with Restate and print the services Restate discovered."""
    uri = check_url(url, "URL", "the deployment's URL, e.g. http://127.0.0.1:9080")
    admin_url = check_url(admin, "--admin", "Restate's admin API, e.g. http://127.0.0.1:9070")
    body: dict[str, Any] = {"uri": uri, "force": force}
    if http1:
        body["use_http_11"] = True
    answer, created = _register(admin_url, body)
    result = summary(answer, uri, created)
    result["ingress"] = _ingress(admin_url)
    if json_:
        emit_json(result)
        return
    verb = "registered" if created else "re-discovered" if force else "already registered"
    out.print(f"{verb} {escape(uri)} with Restate at {escape(admin_url)}")
    out.print(f"deployment: {escape(result['deployment_id'])}")
    t = Table(box=None, pad_edge=False)
    for col in ("SERVICE", "KIND", "HANDLER", "HANDLER KIND"):
        t.add_column(col, overflow="fold")
    for s in result["services"]:
        for i, h in enumerate(s["handlers"]):
            t.add_row(
                escape(s["name"]) if i == 0 else "",
                s["kind"] if i == 0 else "",
                escape(h["name"]),
                h["kind"],
            )
    out.print(t)
    example = _example_call(result)
    if result["ingress"] and example:
        out.print(f"call it through Restate's ingress: curl -X POST {escape(example)}")
    if not created and not force:
        out.print(
            "Restate knew this URL already and kept what it discovered then: after changing "
            "the app's services, run again with --force to re-discover them."
        )


def check_url(value: str, what: str, example: str) -> str:
    """``value`` as an http(s) URL with a host, without a trailing slash; else exit 1."""
    parts = urlsplit(value.strip())
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        fail(f"{what} {value!r} has a bad port: give {example}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(
            f"{what} must be an http:// or https:// URL with a host (got {value!r}): give {example}"
        )
    if parts.query or parts.fragment:
        fail(f"{what} must have no query or fragment (got {value!r}): give {example}")
    return value.strip().rstrip("/")


def _register(admin_url: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Restate's answer to ``POST /deployments`` and whether it is a new deployment."""
    import httpx

    uri = body["uri"]
    try:
        # Restate calls the deployment's /discover before it answers: allow for that.
        r = httpx.post(
            f"{admin_url}/deployments", json=body, timeout=httpx.Timeout(90.0, connect=5.0)
        )
    except httpx.HTTPError as e:
        fail(
            f"cannot reach Restate's admin API at {admin_url} ({type(e).__name__}: {e}): is "
            "restate-server running there? Its admin API listens on port 9070 by default; "
            "give its URL with --admin"
        )
    answer: Any
    try:
        answer = r.json()
    except ValueError:
        answer = r.text
    message = answer.get("message") if isinstance(answer, dict) else None
    code = answer.get("restate_code") if isinstance(answer, dict) else None
    if r.status_code in (200, 201) and isinstance(answer, dict) and "services" in answer:
        return answer, r.status_code == 201
    if code is None:
        # No Restate error shape: something else answers at that address.
        fail(
            f"{admin_url} answered {r.status_code} to POST /deployments, not as Restate's "
            f"admin API does ({_cut(answer)}): give Restate's admin URL (port 9070 by "
            "default) with --admin; durable dev's admin API is not one (its apps need no "
            "registering)"
        )
    text = _cut(message or answer)
    if r.status_code == 409:
        fail(
            f"Restate refused {uri}: a breaking change to services it knows ({text}). "
            "If that is meant, run again with --force (invocations in flight on the old "
            "revision may then fail)"
        )
    if code == "META0003":
        fail(
            f"Restate could not discover the deployment at {uri} ({text}). Check that "
            "`durable serve` runs there and that Restate's host reaches that address (a URL "
            "the Restate server can reach, not only this machine); a deployment served with "
            "--http1 needs --http1 here too"
        )
    fail(f"Restate refused to register {uri} ({r.status_code} {code}): {text}")


def _ingress(admin_url: str) -> str | None:
    """Restate's ingress URL as its admin API tells it (``GET /version``), if it does."""
    import httpx

    try:
        found = httpx.get(f"{admin_url}/version", timeout=5).json().get("ingress_endpoint")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return found.rstrip("/") if isinstance(found, str) and found else None


def _example_call(result: dict[str, Any]) -> str | None:
    """One handler's ingress URL, for the line that shows how to call the deployment."""
    for s in result["services"]:
        for h in s["handlers"]:
            key = "/KEY" if s["kind"] in ("object", "workflow") else ""
            return f"{result['ingress']}/{s['name']}{key}/{h['name']}"
    return None


def summary(answer: dict[str, Any], uri: str, created: bool) -> dict[str, Any]:
    """What ``--json`` prints (with ``ingress``): the deployment and its services, named
    as durable does."""
    services = []
    for s in sorted(answer.get("services", []), key=lambda s: s.get("name", "")):
        kind = _SERVICE_KINDS.get(s.get("ty", ""), str(s.get("ty", "")).lower())
        handlers = [
            {"name": h["name"], "kind": _HANDLER_KINDS.get(h.get("ty", ""), "service")}
            for h in sorted(s.get("handlers", []), key=lambda h: h.get("name", ""))
        ]
        services.append({"name": s["name"], "kind": kind, "handlers": handlers})
    return {
        "deployment_id": answer.get("id"),
        "uri": uri,
        "created": created,
        "services": services,
    }


def _cut(value: Any, width: int = 400) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
