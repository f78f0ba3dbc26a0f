"""What every page module shares: the dashboard's parts and a few response helpers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from durable.devtool.errors import BadRequest, RequestError
from durable.devtool.parsing import read_body
from durable.serde import UnstorableValue, parse_strict
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ._render import Renderer, is_fragment_request
from ._source import Source, refuse

__all__ = [
    "Dashboard",
    "Flash",
    "redirect",
    "form",
    "json_text",
    "small_int",
    "error_message",
    "MAX_FORM",
]

MAX_FORM = 10 * 1024 * 1024


@dataclass(frozen=True)
class Flash:
    """A one-line message over a fragment: what an action did, or why it did not."""

    kind: str  # ok | error
    text: str


@dataclass
class Dashboard:
    """Where the data comes from, the renderer, and what the header says about it."""

    source: Source
    renderer: Renderer
    info: Mapping[str, Any]

    def refuse(self, feature: str) -> None:
        """Raise NotAvailable (501, with the reason) if the source lacks ``feature``."""
        refuse(self.source, feature)

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return self.renderer.render(request, name, context, status_code, headers)

    def not_found(self, request: Request, message: str) -> Response:
        return self.render(request, "error", {"title": "Not found", "message": message}, 404)


def redirect(request: Request, url: str) -> Response:
    """After a POST: htmx follows ``HX-Redirect``; a plain form gets a 303."""
    if is_fragment_request(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


async def form(request: Request) -> ImmutableMultiDict:
    """The submitted form (``application/x-www-form-urlencoded``, what htmx and plain
    forms send), read with the admin API's body limit; the last value of a repeated
    field wins in ``[]`` and ``get``, ``getlist`` has them all."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise BadRequest(f"send the form as application/x-www-form-urlencoded, not {ctype}")
    body = await read_body(request, MAX_FORM)
    try:  # strict: two different malformed values must not become the same text
        text = body.decode("utf-8")
        return ImmutableMultiDict(parse_qsl(text, keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise BadRequest(
            "the form is not UTF-8 (nor are its %XX escapes): send UTF-8, URL-encoded"
        ) from None


def json_text(text: str, what: str) -> str:
    """``text`` (stripped; empty: ``null``) if it is JSON the journal can store, else a
    BadRequest that says why (see ``durable.serde.parse_strict``)."""
    text = text.strip() or "null"
    try:
        parse_strict(text)
    except UnstorableValue as e:
        raise BadRequest(f"{what} cannot be accepted: {e.message}") from None
    except ValueError as e:
        raise BadRequest(f"{what} is not valid JSON: {e}") from None
    return text


def small_int(text: Any, default: int | None = None) -> int:
    """An integer from a form or query field (ValueError unless one of at most 18 digits)."""
    raw = str(text if text not in (None, "") else ("" if default is None else default)).strip()
    if len(raw) > 18:
        raise ValueError(f"{raw[:20]!r}... is too long for a number here")
    return int(raw)


def error_message(e: Exception) -> str:
    if isinstance(e, RequestError):
        return e.message
    return str(e.args[0]) if e.args else type(e).__name__
