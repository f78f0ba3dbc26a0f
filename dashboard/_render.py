"""Templates: the Jinja environment, its filters, and the page-or-fragment helper.

Every view builds a context (a dict) and calls :meth:`Renderer.render` with a page
name. The helper alone decides what is sent: an htmx request (``HX-Request: true``)
gets the fragment ``_NAME.html``; any other request gets the full page ``NAME.html``
(which includes the fragment), or, for fragments without a page of their own, the
fragment inside the generic layout ``_page.html``.

Autoescaping is on for every template: a value from a handler (payload, key, error,
name) is always text. The only ``Markup`` built in Python is :func:`json_html`, which
escapes every token it wraps.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = [
    "HTMX",
    "STATIC_DIR",
    "TEMPLATES_DIR",
    "Renderer",
    "is_fragment_request",
    "json_html",
    "pretty",
    "reltime",
    "abstime",
    "fingerprint",
]

HTMX = "htmx-2.0.4.min.js"
TEMPLATES_DIR = Path(str(files("durable.templates") / "dashboard"))
STATIC_DIR = Path(str(files("durable.dashboard") / "static"))
#: payloads longer than this (characters of pretty JSON) or taller than COLLAPSE_LINES
#: are collapsed behind a toggle
COLLAPSE_CHARS = 240
COLLAPSE_LINES = 8
#: values whose one-line JSON is at most this long are shown on one line
COMPACT_CHARS = 60

STATUS_CLASSES = {
    "pending": "grey",
    "scheduled": "grey",
    "ready": "blue",
    "running": "blue",
    "suspended": "purple",
    "backing-off": "orange",
    "paused": "orange",
    "completed": "green",
    "failed": "red",
    "killed": "red",
    "cancelled": "grey",
}


def is_fragment_request(request: Request) -> bool:
    """An htmx request that wants a fragment (not a boosted or history navigation)."""
    h = request.headers
    return (
        h.get("hx-request") == "true"
        and h.get("hx-boosted") != "true"
        and h.get("hx-history-restore-request") != "true"
    )


# ---------------------------------------------------------------------------- filters
def _parse_iso(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def reltime(value: Any, now: datetime | None = None) -> str:
    """'3s ago', '5m ago', 'in 2h' (the browser keeps it fresh; see dashboard.js)."""
    dt = _parse_iso(value)
    if dt is None:
        return ""
    now = now or datetime.now(UTC)
    secs = (now - dt).total_seconds()
    future = secs < 0
    s = abs(secs)
    if s < 1:
        return "just now"
    if s < 60:
        text = f"{int(s)}s"
    elif s < 3600:
        text = f"{int(s // 60)}m"
    elif s < 86400:
        text = f"{int(s // 3600)}h"
    else:
        text = f"{int(s // 86400)}d"
    return f"in {text}" if future else f"{text} ago"


def abstime(value: Any) -> str:
    """'2024-05-01 12:00:03.123 UTC'."""
    dt = _parse_iso(value)
    if dt is None:
        return ""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d} UTC"


def duration(ms: Any) -> str:
    if ms is None:
        return ""
    ms = float(ms)
    if ms < 1:
        return f"{ms * 1000:.0f} µs" if ms else "0"
    if ms < 1000:
        return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60_000:.1f} min"


def pretty(value: Any) -> str:
    """A value as pretty JSON text (for editors)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def display(value: Any) -> str:
    """A value as JSON to read: on one line when that is short, else pretty."""
    try:
        one = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    except (TypeError, ValueError):
        return str(value)
    return one if len(one) <= COMPACT_CHARS else pretty(value)


_TOKEN = re.compile(
    r'(?P<key>"(?:[^"\\]|\\.)*"(?=\s*:))'
    r'|(?P<str>"(?:[^"\\]|\\.)*")'
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<lit>\btrue\b|\bfalse\b|\bnull\b)"
)


def json_html(value: Any) -> Markup:
    """JSON (see :func:`display`) with its tokens in coloured spans; every piece of
    text is escaped."""
    text = display(value)
    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        out.append(str(escape(text[pos : m.start()])))
        kind = m.lastgroup or "str"
        out.append(f'<span class="j-{kind}">{escape(m.group())}</span>')
        pos = m.end()
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


def collapsed(value: Any) -> bool:
    text = display(value)
    return len(text) > COLLAPSE_CHARS or text.count("\n") >= COLLAPSE_LINES


def preview(value: Any, limit: int = 90) -> str:
    """One line of a value (for lists and collapsed payloads)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(text: Any) -> str:
    return str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""


def urlq(params: Mapping[str, Any] | None = None, **more: Any) -> str:
    """A query string from a mapping (None and '' left out)."""
    merged = {**(params or {}), **more}
    pairs: list[tuple[str, str]] = []
    for k, v in merged.items():
        if v is None or v == "":
            continue
        if isinstance(v, (list, tuple)):
            pairs += [(k, str(x)) for x in v]
        else:
            pairs.append((k, str(v)))
    return urlencode(pairs)


def fingerprint(data: Any) -> str:
    """A short digest of what a live fragment shows (unchanged: the poll gets a 204)."""
    return hashlib.blake2s(
        json.dumps(data, sort_keys=True, default=str).encode(), digest_size=8
    ).hexdigest()


def _static_version() -> str:
    h = hashlib.blake2s(digest_size=6)
    for p in sorted(STATIC_DIR.glob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------- renderer
class Renderer:
    """The Jinja environment of the dashboard and its one render helper."""

    def __init__(self, globals_: Mapping[str, Any] | None = None) -> None:
        env = Environment(
            loader=FileSystemLoader(str(TEMPLATES_DIR)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(
            reltime=reltime,
            abstime=abstime,
            duration=duration,
            pretty=pretty,
            json_html=json_html,
            collapsed=collapsed,
            preview=preview,
            first_line=first_line,
            q=lambda s: quote(str(s), safe=""),
            status_class=lambda s: STATUS_CLASSES.get(str(s), "grey"),
        )
        env.globals.update(
            urlq=urlq,
            htmx=HTMX,
            static_v=_static_version(),
            **(globals_ or {}),
        )
        self.env = env
        self._pages = {p.stem for p in TEMPLATES_DIR.glob("*.html") if not p.stem.startswith("_")}

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """The fragment ``_name.html`` for htmx, else the page (see the module docstring)."""
        ctx = {"request": request, "path": request.url.path, **context}
        if is_fragment_request(request):
            template = f"_{name}.html"
        elif name in self._pages:
            template = f"{name}.html"
        else:
            template = "_page.html"
            ctx["fragment"] = f"_{name}.html"
        html = self.env.get_template(template).render(ctx)
        return HTMLResponse(
            html,
            status_code=status_code,
            headers={"Vary": "HX-Request", "Cache-Control": "no-store", **(headers or {})},
        )
