"""The call graph: an invocation's whole call tree (its root caller and every
descendant), what ``GET /api/invocations/{id}/tree`` shows.

Children are found through the journal (each ``call`` and ``one_way_call`` entry names
its callee), parents through ``parent_id`` (calls) or the send entry journaled with the
child (:func:`~durable.devtool.admin.views.caller`). The walk is bounded: at most
``limit`` invocations (breadth first from the root) and ``MAX_DEPTH`` levels up; a cut
tree says so in ``truncated`` and ``note``.
"""

from __future__ import annotations

from typing import Any

from durable.payloads import CallPayload, SendPayload

from ..store import queries
from ..store.ops import InvocationRow
from ..store.queries import Cursor
from .views import Live, caller, invocation_status, iso

__all__ = ["call_tree", "MAX_TREE", "MAX_DEPTH"]

MAX_TREE = 500  # invocations in one tree, at most
MAX_DEPTH = 64  # callers walked up to find the root, at most


def _row(cur: Cursor, live: Live | None, inv_id: str) -> InvocationRow | None:
    mem = live.rows.get(inv_id) if live else None
    return mem or queries.invocation(cur, inv_id)


def _root(cur: Cursor, live: Live | None, row: InvocationRow) -> tuple[InvocationRow, bool]:
    """The topmost caller of ``row`` (and whether the walk stopped short of it)."""
    seen = {row.id}
    for _ in range(MAX_DEPTH):
        c = caller(cur, row)
        if c is None:
            return row, False
        up = _row(cur, live, c["id"])
        if up is None or up.id in seen:  # a purged caller: start here
            return row, False
        seen.add(up.id)
        row = up
    return row, True


def call_tree(
    cur: Cursor, live: Live | None, inv_id: str, limit: int = MAX_TREE
) -> dict[str, Any] | None:
    """The call tree ``inv_id`` belongs to, as a depth-first list of nodes (None: the
    invocation is unknown). Each node: the invocation's summary, ``depth``, and the
    ``parent``/``entry``/``via`` (``call`` or ``send``) that made it."""
    start = _row(cur, live, inv_id)
    if start is None:
        return None
    limit = max(1, min(limit, MAX_TREE))
    root, cut_above = _root(cur, live, start)
    rows: dict[str, InvocationRow] = {root.id: root}
    links: dict[str, list[tuple[str, int, str]]] = {}  # parent -> (child, entry, via)
    frontier = [root.id]
    cut_below = False
    while frontier and not cut_below:
        found: list[tuple[str, str, int, str]] = []
        for parent, idx, kind, payload, _c, _d in queries.call_entries(cur, frontier):
            p = (SendPayload if kind == "one_way_call" else CallPayload).from_json(payload)
            if p.invocation_id and p.invocation_id not in rows:
                found.append((parent, p.invocation_id, idx, "send" if kind != "call" else "call"))
        ids = list(dict.fromkeys(child for _p, child, _i, _v in found))
        if len(rows) + len(ids) > limit:
            ids = ids[: limit - len(rows)]
            cut_below = True
        fetched = queries.invocations_by_id(cur, ids)
        if live:
            fetched.update({i: live.rows[i] for i in ids if i in live.rows})
        frontier = []
        for parent, child, idx, via in found:
            if child in fetched and child not in rows:
                rows[child] = fetched[child]
                links.setdefault(parent, []).append((child, idx, via))
                frontier.append(child)
    nodes: list[dict[str, Any]] = []

    def visit(inv_id: str, depth: int, parent: str | None, entry: int | None, via: str) -> None:
        r = rows[inv_id]
        status = invocation_status(r, live)
        nodes.append(
            {
                "id": r.id,
                "service": r.service,
                "handler": r.handler,
                "key": r.key,
                "status": status,
                "created_at": iso(r.created_at),
                "completed_at": iso(r.completed_at),
                "scheduled_at": iso(r.scheduled_at),
                "failure": (
                    {"code": r.failure_code, "message": r.failure_message}
                    if r.failure_code is not None
                    else None
                ),
                "depth": depth,
                "parent": parent,
                "entry": entry,
                "via": via,
            }
        )
        for child, idx, how in links.get(inv_id, []):
            visit(child, depth + 1, inv_id, idx, how)

    visit(root.id, 0, None, None, "root")
    notes = []
    if cut_above:
        notes.append(f"the callers go up more than {MAX_DEPTH} levels: the tree starts below")
    if cut_below:
        notes.append(f"the tree is cut at {len(rows)} invocations (limit={limit})")
    truncated = cut_above or cut_below
    return {
        "root": root.id,
        "focus": start.id,
        "nodes": nodes,
        "truncated": truncated,
        "note": "; ".join(notes) or None,
    }
