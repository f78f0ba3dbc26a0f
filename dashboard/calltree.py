"""A whole call tree as one waterfall: ``GET /invocations/{id}/tree`` draws the root
caller of the invocation and every invocation called or sent from it, each a bar from
its creation to its completion (what ``GET /api/invocations/{id}/tree`` answers, at
most ``limit`` invocations, with a note when cut)."""

from __future__ import annotations

from durable.devtool import timeline
from durable.devtool.admin import tree as call_tree
from durable.devtool.errors import BadRequest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._core import Dashboard, small_int
from .invocation import check_id, utcnow

__all__ = ["routes"]


def routes(d: Dashboard) -> list[Route]:
    async def show(request: Request) -> Response:
        inv_id = request.path_params["id"]
        try:
            check_id(inv_id)
            limit = small_int(request.query_params.get("limit"), call_tree.MAX_TREE)
        except (BadRequest, ValueError):
            return d.not_found(request, "give an invocation id (inv_...) and ?limit=N")
        d.refuse("tree")
        tree = await d.source.tree(inv_id, limit)
        if tree is None:
            return d.not_found(request, f"unknown invocation {inv_id}: it may have been purged")
        ctx = {"tree": tree, "timeline": timeline.of_tree(tree, utcnow()), "focus": inv_id}
        return d.render(request, "tree", ctx)

    return [Route("/invocations/{id}/tree", show)]
