"""The invocations list: filters, keyset pages, live updates, bulk actions over a filter.

``GET /invocations`` is the page (``/`` redirects here). Its table is the fragment
``_invocations.html``, which polls the same URL every second; the fragment carries a
fingerprint of what it shows and an unchanged poll is answered 204 (htmx then leaves
the DOM alone). Pages are keyset pages on the time-ordered invocation id
(``after``/``before``), never OFFSET, so a deep page costs what the first one does.

Bulk actions apply to every invocation matching the filter: ``GET /invocations/bulk``
shows what would be touched (nothing changes), ``POST`` does it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durable.devtool.admin.filters import parse_filter
from durable.devtool.errors import BadRequest, RequestError
from durable.devtool.lifecycle import TERMINAL, Status
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ._core import Dashboard, Flash, form, small_int
from ._reads import MAX_BULK
from ._render import fingerprint, is_fragment_request

__all__ = ["routes", "FILTER_FIELDS", "STATUS_CHOICES"]

FILTER_FIELDS = ("service", "handler", "key", "status", "since", "until", "q")
PAGE_SIZES = (25, 50, 100, 200)
_ACTIVE = [s.value for s in Status if s not in TERMINAL]
_FINISHED = [s.value for s in Status if s in TERMINAL]
#: the status filter's choices: (value, label)
STATUS_CHOICES = [
    ("", "any status"),
    (",".join(_ACTIVE), "active (not finished)"),
    (",".join(_FINISHED), "finished"),
    *((s.value, s.value) for s in Status),
]
BULK_ACTIONS = {
    "cancel": "Cancel",
    "kill": "Kill",
    "pause": "Pause",
    "resume": "Resume",
    "purge": "Purge",
}


def filters_of(params: Mapping[str, Any]) -> dict[str, str]:
    """The filter fields of a query string or form, as given (strings, '' when unset)."""
    out = {k: str(params.get(k) or "").strip() for k in FILTER_FIELDS}
    if hasattr(params, "getlist"):
        statuses = [s for v in params.getlist("status") for s in str(v).split(",") if s]
        out["status"] = ",".join(dict.fromkeys(statuses))
    return out


def describe(filters: Mapping[str, str]) -> str:
    """'service = Shop, status in running,suspended' (or 'every invocation')."""
    parts = []
    for k in FILTER_FIELDS:
        v = filters.get(k)
        if not v:
            continue
        if k == "status":
            parts.append(f"status in {v}" if "," in v else f"status = {v}")
        elif k == "q":
            parts.append(f"id, input, output or error contains {v}")
        elif k in ("since", "until"):
            parts.append(f"created {'at or after' if k == 'since' else 'before'} {v}")
        else:
            parts.append(f"{k} = {v}")
    return ", ".join(parts) or "every invocation"


def _limit(params: Mapping[str, Any]) -> int:
    try:
        n = small_int(params.get("limit"), 50)
    except ValueError:
        n = 50
    return n if n in PAGE_SIZES else 50


def _page_fingerprint(page: Mapping[str, Any]) -> str:
    return fingerprint(
        [
            page.get("next"),
            page.get("prev"),
            [
                (
                    i["id"],
                    i["status"],
                    i["modified_at"],
                    i["attempt"],
                    i["waits_on"],
                    i["last_error"],
                    i["failure"],
                    i["journal_length"],
                )
                for i in page.get("invocations", [])
            ],
        ]
    )


def routes(d: Dashboard) -> list[Route]:
    async def home(_request: Request) -> Response:
        return RedirectResponse("/invocations", status_code=307)

    async def list_page(request: Request) -> Response:
        q = request.query_params
        filters = filters_of(q)
        after, before = q.get("after") or None, q.get("before") or None
        limit = _limit(q)
        error = None
        page: dict[str, Any] = {"invocations": [], "next": None, "prev": None}
        try:
            parse_filter(filters)  # a bad filter is said here, whatever the source
            page = await d.source.invocations(filters, after=after, before=before, limit=limit)
        except RequestError as e:
            error = e.message
        v = _page_fingerprint(page)
        if is_fragment_request(request) and q.get("v") == v:
            return Response(status_code=204)
        services = [] if is_fragment_request(request) else (await d.source.services()).services
        return d.render(
            request,
            "invocations",
            {
                "filters": filters,
                "described": describe(filters),
                "filtered": any(filters.values()),
                "page": page,
                "after": after,
                "before": before,
                "limit": limit,
                "page_sizes": PAGE_SIZES,
                "error": error,
                "v": v,
                "status_choices": STATUS_CHOICES,
                "bulk_actions": BULK_ACTIONS,
                "services": services,
                "handler_names": sorted({h.name for s in services for h in s.handlers}),
            },
        )

    async def count(request: Request) -> Response:
        filters = filters_of(request.query_params)
        partial = False
        good: dict[str, str] | None = filters
        try:
            parse_filter(filters)
            total: int | None
            total, partial = await d.source.count(filters)
        except RequestError:  # a bad filter: the list says why; chips count everything
            good, total = None, None
        counts = await d.source.status_counts(good)
        return d.render(
            request,
            "counts",
            {
                "total": total,
                "partial": partial,
                "filtered": any(filters.values()),
                "counts": counts,
                "statuses": [s.value for s in Status],
                "filters": filters,
            },
        )

    async def _bulk_target(
        params: Mapping[str, Any],
    ) -> tuple[dict[str, str], str]:
        d.refuse("bulk")
        filters = filters_of(params)
        action = str(params.get("action") or "")
        if action not in BULK_ACTIONS:
            raise BadRequest(f"pick an action: {', '.join(BULK_ACTIONS)}")
        parse_filter(filters)
        return filters, action

    async def bulk(request: Request) -> Response:
        params: Mapping[str, Any] = request.query_params
        if request.method == "POST":
            params = await form(request)
        ctx: dict[str, Any] = {"bulk_actions": BULK_ACTIONS}
        try:
            filters, action = await _bulk_target(params)
        except RequestError as e:
            ctx.update(flash=Flash("error", e.message), stage="error")
            return d.render(request, "bulk", ctx, 200 if is_fragment_request(request) else 400)
        ctx.update(filters=filters, action=action, described=describe(filters))
        ids, more = await d.source.matching_ids(filters, MAX_BULK)
        if request.method == "GET":
            ctx.update(stage="confirm", count=len(ids), more=more, sample=ids[:10], cap=MAX_BULK)
            return d.render(request, "bulk", ctx)
        try:
            result = await d.source.bulk(action, ids)
        except RequestError as e:
            ctx.update(flash=Flash("error", e.message), stage="error")
            return d.render(request, "bulk", ctx, 200 if is_fragment_request(request) else e.status)
        ctx.update(
            stage="done",
            done=len(result["done"]),
            failed=result["failed"][:20],
            failed_count=len(result["failed"]),
            more=more,
        )
        return d.render(request, "bulk", ctx)

    return [
        Route("/", home),
        Route("/invocations", list_page),
        Route("/invocations/count", count),
        Route("/invocations/bulk", bulk, methods=["GET", "POST"]),
    ]
