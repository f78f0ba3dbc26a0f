"""durable's admin JSON shapes built from a Restate cluster's SQL tables.

The same keys as :mod:`durable.devtool.admin.views` gives (so the CLI, TUI and dashboard
show them unchanged), from ``sys_invocation``, ``sys_journal``, ``state``,
``sys_promise`` and ``sys_service``. What Restate does not keep is left empty and said
so: no attempts or logs, no state history (``state`` per entry), and journals purged
after the invocation's ``journal_retention`` (one day by default).

Statuses: Restate's are durable's, except that ``completed`` with a failure is durable's
``failed``, or ``killed``/``cancelled`` when the failure says so (``[409] killed``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from ..lifecycle import TERMINAL, allowed_actions
from ..store.queries import InvocationFilter
from . import journal as rj
from .restate import RestateAdmin, sql_text

__all__ = [
    "status_of",
    "status_sql",
    "list_invocations",
    "show_invocation",
    "call_tree",
    "state",
    "state_keys",
    "pending",
    "services",
    "MAX_PAGE",
    "NO_JOURNAL",
]

MAX_PAGE = 1000
MAX_TREE = 500
_KILLED = "[409] killed"
_CANCELLED = "[409] cancelled"
NO_JOURNAL = (
    "Restate keeps no journal for this invocation (it drops a finished invocation's "
    "journal after its journal_retention, one day by default)"
)
_KINDS = {"service": "service", "virtual_object": "object", "workflow": "workflow"}
_FAILURE = re.compile(r"\[(\d{3})\]\s?(.*)", re.S)
# scheduled_at is read for Restate 1.7.12's sake: without it in the projection,
# scheduled_start_at comes back empty
_COLUMNS = (
    "id, target_service_name, target_handler_name, target_service_key, target_service_ty, "
    "status, completion_result, completion_failure, created_at, modified_at, completed_at, "
    "scheduled_at, scheduled_start_at, running_at, next_retry_at, retry_count, last_failure, "
    "idempotency_key, "
    "invoked_by_id, invoked_by, restarted_from, journal_commands_size, journal_size, "
    "suspended_waiting_for_signals, suspended_waiting_for_completions, "
    "last_failure_related_command_index, last_failure_related_command_name, "
    "pinned_deployment_id, journal_retention, completion_retention"
)


# ---------------------------------------------------------------------------- statuses
def status_of(row: dict[str, Any]) -> str:
    """durable's status of a ``sys_invocation`` row."""
    st = str(row.get("status") or "")
    if st == "completed":
        if row.get("completion_result") != "failure":
            return "completed"
        failure = row.get("completion_failure") or ""
        return {_KILLED: "killed", _CANCELLED: "cancelled"}.get(failure, "failed")
    return {"inboxed": "pending"}.get(st, st)


def status_sql(status: str) -> str:
    """A SQL condition on ``sys_invocation`` for one of durable's statuses."""
    done = "status = 'completed'"
    if status == "completed":
        return f"({done} AND completion_result = 'success')"
    if status == "killed":
        return f"({done} AND completion_failure = '{_KILLED}')"
    if status == "cancelled":
        return f"({done} AND completion_failure = '{_CANCELLED}')"
    if status == "failed":
        return (
            f"({done} AND completion_result = 'failure' AND "
            f"completion_failure NOT IN ('{_KILLED}', '{_CANCELLED}'))"
        )
    if status == "pending":
        return "status IN ('pending', 'inboxed')"
    return f"status = {sql_text(status)}"


def _failure(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    m = _FAILURE.fullmatch(text.strip())
    if m is None:
        return {"code": 500, "message": text}
    return {"code": int(m.group(1)), "message": m.group(2)}


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def iso(value: Any) -> str | None:
    """A Restate time as durable shows times (ISO, UTC, with a Z)."""
    dt = _time(value)
    return None if dt is None else dt.isoformat() + "Z"


def _sql_time(dt: datetime) -> str:
    return f"'{dt.isoformat()}Z'"


# ---------------------------------------------------------------------------- summaries
def _waiting(row: dict[str, Any], status: str, journal: list[dict[str, Any]] | None) -> list:
    if status in TERMINAL:
        return []
    if status == "pending":
        key = row.get("target_service_key")
        return [{"kind": "key", "what": f"its turn on key {key!r}", "owner": None}]
    if status == "scheduled":
        return [{"kind": "start", "what": f"its start time {iso(row.get('scheduled_start_at'))}"}]
    if status == "backing-off":
        return [{"kind": "retry", "what": f"retry at {iso(row.get('next_retry_at'))}"}]
    if status == "paused":
        return [{"kind": "person", "what": "a person: resume, restart, cancel or kill it"}]
    if status != "suspended":
        return []
    out: list[dict[str, Any]] = []
    signals = [s for s in row.get("suspended_waiting_for_signals") or [] if s >= 17]
    if journal is not None:
        for e in journal:
            if e["completed"] or e["kind"] in ("input", "output"):
                continue
            out.append(_entry_wait(e))
    else:
        for s in signals:
            awk = rj.awakeable_id(row["id"], s)
            out.append({"kind": "awakeable", "what": f"awakeable {awk}", "awakeable_id": awk})
    return out


def _entry_wait(e: dict[str, Any]) -> dict[str, Any]:
    k, name, p = e["kind"], e["name"], e["payload"] if isinstance(e["payload"], dict) else {}
    if k == "sleep":
        what = f"timer until {p.get('wake_at')}"
    elif k == "awakeable":
        what = f"awakeable {p.get('id') or '?'}"
    elif k == "call":
        what = f"call {name} ({e.get('child_id') or '?'})"
    elif k in ("get_promise", "peek_promise", "complete_promise"):
        what = f"promise {name!r}"
    elif k == "attach_invocation":
        what = f"invocation {name}"
    else:
        what = k + (f" {name!r}" if name else "")
    out: dict[str, Any] = {"index": e["index"], "kind": k, "name": name, "what": what}
    if k == "awakeable":
        out["awakeable_id"] = p.get("id")
    if k == "call":
        out["invocation_id"] = e.get("child_id")
    return out


def _summary(row: dict[str, Any], journal: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status = status_of(row)
    waiting = _waiting(row, status, journal)
    last = row.get("last_failure")
    failure = _failure(row.get("completion_failure")) if status in TERMINAL else None
    return {
        "id": row["id"],
        "service": row.get("target_service_name"),
        "handler": row.get("target_handler_name"),
        "key": row.get("target_service_key"),
        "status": status,
        "created_at": iso(row.get("created_at")),
        "modified_at": iso(row.get("modified_at")),
        "completed_at": iso(row.get("completed_at")),
        # Restate keeps no retry count once an invocation ends: it ran at least once
        "attempt": int(row.get("retry_count") or (1 if row.get("running_at") else 0)),
        "last_error": last.splitlines()[0] if last else None,
        "next_retry_at": iso(row.get("next_retry_at")),
        "scheduled_at": iso(row.get("scheduled_start_at")),
        "journal_length": int(row.get("journal_commands_size") or 0),
        "idempotency_key": row.get("idempotency_key"),
        "parent_id": row.get("invoked_by_id"),
        "restarted_from": row.get("restarted_from"),
        "failure": failure,
        "waiting": waiting,
        "waits_on": "; ".join(w["what"] for w in waiting) or None,
        "actions": allowed_actions(status),
    }


# ---------------------------------------------------------------------------- lists
def _where(f: InvocationFilter) -> list[str]:
    cond = []
    if f.service:
        cond.append(f"target_service_name = {sql_text(f.service)}")
    if f.handler:
        cond.append(f"target_handler_name = {sql_text(f.handler)}")
    if f.key is not None:
        cond.append(f"target_service_key = {sql_text(f.key)}")
    if f.statuses:
        cond.append("(" + " OR ".join(status_sql(s) for s in f.statuses) + ")")
    if f.since:
        cond.append(f"created_at >= {_sql_time(f.since)}")
    if f.until:
        cond.append(f"created_at < {_sql_time(f.until)}")
    if f.id_contains:
        cond.append(f"strpos(id, {sql_text(f.id_contains)}) > 0")
    if f.text:
        t = sql_text(f.text.lower())
        cond.append(
            f"(strpos(lower(id), {t}) > 0 OR strpos(lower(coalesce(last_failure, '')), {t}) > 0"
            f" OR strpos(lower(coalesce(completion_failure, '')), {t}) > 0)"
        )
    return cond


async def _row_time(admin: RestateAdmin, inv_id: str) -> str | None:
    rows = await admin.query(f"SELECT created_at FROM sys_invocation WHERE id = {sql_text(inv_id)}")
    return rows[0]["created_at"] if rows else None


async def list_invocations(
    admin: RestateAdmin,
    f: InvocationFilter,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = 50,
    count: bool = False,
    newest_first: bool = True,
) -> dict[str, Any]:
    """One page of invocations with the cursors of its neighbours (keyset paging on
    ``(created_at, id)``, as durable's list)."""
    limit = max(0, min(limit, MAX_PAGE))
    cond = _where(f)
    cursor_id = after or before
    # which way the page reads: after = older (newest first), before = the other way
    older = (after is not None) == newest_first
    if cursor_id is not None:
        at = await _row_time(admin, cursor_id)
        ts = f"'{at}'" if at else "'0001-01-01T00:00:00Z'"
        op = "<" if older else ">"
        cid = sql_text(cursor_id)
        cond.append(f"(created_at {op} {ts} OR (created_at = {ts} AND id {op} {cid}))")
    where = (" WHERE " + " AND ".join(cond)) if cond else ""
    reverse = before is not None
    desc = newest_first != reverse
    order = "DESC" if desc else "ASC"
    rows = (
        await admin.query(
            f"SELECT {_COLUMNS} FROM sys_invocation{where} "
            f"ORDER BY created_at {order}, id {order} LIMIT {limit + 1}"
        )
        if limit
        else []
    )
    more = len(rows) > limit
    page = rows[:limit]
    if reverse:
        page.reverse()
    journals = await _journals(admin, [r for r in page if r.get("status") == "suspended"][:50])
    items = [_summary(r, journals.get(r["id"])) for r in page]
    if before is not None:
        has_older, has_newer = True, more
    else:
        has_older, has_newer = more, after is not None
    out: dict[str, Any] = {
        "invocations": items,
        "next": items[-1]["id"] if items and has_older else None,
        "prev": items[0]["id"] if items and has_newer else None,
    }
    if f.text:
        out["note"] = (
            "on a Restate cluster q searches ids and failures (Restate's SQL holds no inputs "
            "or outputs)"
        )
    if count:
        base = (" WHERE " + " AND ".join(_where(f))) if _where(f) else ""
        n = await admin.query(f"SELECT count(*) AS n FROM sys_invocation{base}")
        out["total"] = int(n[0]["n"]) if n else 0
    return out


async def _journal_rows(admin: RestateAdmin, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not ids:
        return {}
    rows = await admin.query(
        "SELECT id, index, entry_type, entry_json, appended_at FROM sys_journal "
        f"WHERE id IN ({', '.join(sql_text(i) for i in ids)}) ORDER BY id, index"
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["id"], []).append(r)
    return out


async def _journals(
    admin: RestateAdmin, invocations: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The mapped journals of these invocations (for what they wait on)."""
    found = await _journal_rows(admin, [r["id"] for r in invocations])
    return {
        r["id"]: _views(found.get(r["id"], []), r["id"], _signals(r))
        for r in invocations
        if r["id"] in found
    }


def _signals(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(row.get("suspended_waiting_for_signals") or ())


def _views(rows: list[dict[str, Any]], inv_id: str, signals: tuple[int, ...]) -> list:
    try:
        return rj.entry_views(rows, inv_id, signals)
    except rj.UnknownEntry:
        return []


# ---------------------------------------------------------------------------- one
async def _invocation_row(admin: RestateAdmin, inv_id: str) -> dict[str, Any] | None:
    rows = await admin.query(f"SELECT {_COLUMNS} FROM sys_invocation WHERE id = {sql_text(inv_id)}")
    return rows[0] if rows else None


async def show_invocation(admin: RestateAdmin, inv_id: str) -> dict[str, Any] | None:
    """Everything Restate keeps about one invocation, in durable's shape (None: unknown)."""
    row = await _invocation_row(admin, inv_id)
    if row is None:
        return None
    raw = (await _journal_rows(admin, [inv_id])).get(inv_id, [])
    signals = tuple(row.get("suspended_waiting_for_signals") or ())
    note = None
    try:
        entries = rj.entry_views(raw, inv_id, signals)
    except rj.UnknownEntry as e:
        entries, note = [], f"the journal cannot be shown: {e}"
    if not raw:
        note = NO_JOURNAL
    body = _summary(row, entries)
    st = body["status"]
    request_body, headers = rj.request_of(raw)
    output = next((e for e in reversed(entries) if e["kind"] == "output"), None)
    failure = body["failure"]
    body.update(
        {
            "service_kind": _KINDS.get(str(row.get("target_service_ty")), "service"),
            "handler_kind": None,
            "input": request_body,
            "headers": json.dumps(headers),
            "output": json.dumps(output["result"]) if output and output["completed"] else None,
            "failure_code": failure["code"] if failure else None,
            "failure_message": failure["message"] if failure else None,
            "last_error": row.get("last_failure"),
            "last_error_stack": None,
            "waiting_on": None,
            "parent_entry": None,
            "cancel_requested": False,
            "request": {"headers": headers, "body": _parse(request_body)},
            "output_value": output["result"] if output and st == "completed" else None,
            "queue_position": None,
            "caller": await _caller(admin, row),
            "journal": entries,
            "journal_note": note,
            "attempts": [],
            "logs": [],
            "restate": {
                "status": row.get("status"),
                "deployment": row.get("pinned_deployment_id"),
                "journal_retention": row.get("journal_retention"),
                "completion_retention": row.get("completion_retention"),
                "last_failure_command": row.get("last_failure_related_command_name"),
            },
        }
    )
    return body


def _parse(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


async def _caller(admin: RestateAdmin, row: dict[str, Any]) -> dict[str, Any] | None:
    parent = row.get("invoked_by_id")
    if not parent:
        return None
    raw = (await _journal_rows(admin, [parent])).get(parent, [])
    for e in _views(raw, parent, ()):
        if e.get("child_id") == row["id"]:
            via = "call" if e["kind"] == "call" else "send"
            return {"id": parent, "entry": e["index"], "kind": via}
    return {"id": parent, "entry": None, "kind": "call"}


# ---------------------------------------------------------------------------- tree
async def call_tree(admin: RestateAdmin, inv_id: str, limit: int = MAX_TREE) -> dict | None:
    """The call tree ``inv_id`` is in, through ``invoked_by_id`` (root down, bounded)."""
    start = await _invocation_row(admin, inv_id)
    if start is None:
        return None
    limit = max(1, min(limit, MAX_TREE))
    root, seen = start, {start["id"]}
    cut_above = False
    for _ in range(64):
        parent = root.get("invoked_by_id")
        up = await _invocation_row(admin, parent) if parent else None
        if up is None or up["id"] in seen:
            break
        seen.add(up["id"])
        root = up
    else:
        cut_above = True
    rows = {root["id"]: root}
    children: dict[str, list[str]] = {}
    links: dict[str, tuple[int | None, str]] = {}  # child -> (parent's entry, via)
    frontier, cut_below = [root["id"]], False
    while frontier and not cut_below:
        found = await admin.query(
            f"SELECT {_COLUMNS} FROM sys_invocation WHERE invoked_by_id IN "
            f"({', '.join(sql_text(i) for i in frontier)}) ORDER BY created_at, id"
        )
        made = await _made_by(admin, frontier)
        frontier = []
        for r in found:
            if r["id"] in rows:
                continue
            if len(rows) >= limit:
                cut_below = True
                break
            rows[r["id"]] = r
            children.setdefault(r["invoked_by_id"], []).append(r["id"])
            links[r["id"]] = made.get(r["id"], (None, "call"))
            frontier.append(r["id"])
    nodes: list[dict[str, Any]] = []

    def visit(i: str, depth: int, parent: str | None) -> None:
        s = _summary(rows[i])
        nodes.append(
            {
                **{k: s[k] for k in ("id", "service", "handler", "key", "status")},
                **{k: s[k] for k in ("created_at", "completed_at", "scheduled_at", "failure")},
                "depth": depth,
                "parent": parent,
                "entry": links.get(i, (None, "root"))[0],
                "via": links.get(i, (None, "root"))[1],
            }
        )
        for c in children.get(i, []):
            visit(c, depth + 1, i)

    visit(root["id"], 0, None)
    notes = []
    if cut_above:
        notes.append("the callers go up more than 64 levels: the tree starts below")
    if cut_below:
        notes.append(f"the tree is cut at {len(rows)} invocations (limit={limit})")
    return {
        "root": root["id"],
        "focus": inv_id,
        "nodes": nodes,
        "truncated": cut_above or cut_below,
        "note": "; ".join(notes) or None,
    }


async def _made_by(admin: RestateAdmin, parents: list[str]) -> dict[str, tuple[int | None, str]]:
    """Each child of ``parents`` -> (the parent's entry that made it, call or send)."""
    found = await _journal_rows(admin, parents)
    out: dict[str, tuple[int | None, str]] = {}
    for inv, rows in found.items():
        for e in _views(rows, inv, ()):
            if e.get("child_id"):
                out[e["child_id"]] = (e["index"], "call" if e["kind"] == "call" else "send")
    return out


# ---------------------------------------------------------------------------- state
async def state(admin: RestateAdmin, service: str, key: str) -> dict[str, Any]:
    """A key's state now (``state.value_utf8``)."""
    rows = await admin.query(
        "SELECT key, value_utf8 FROM state WHERE service_name = "
        f"{sql_text(service)} AND service_key = {sql_text(key)} ORDER BY key"
    )
    return {
        "service": service,
        "key": key,
        "as_of": None,
        "state": {r["key"]: _parse(r.get("value_utf8")) for r in rows},
    }


async def raw_state(admin: RestateAdmin, service: str, key: str) -> dict[str, bytes]:
    """A key's state as bytes (what a state edit sends back)."""
    rows = await admin.query(
        "SELECT key, value FROM state WHERE service_name = "
        f"{sql_text(service)} AND service_key = {sql_text(key)}"
    )
    return {r["key"]: _bytes(r.get("value")) for r in rows}


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):  # Restate's JSON gives binary columns as hex
        try:
            return bytes.fromhex(value)
        except ValueError:
            return value.encode("utf-8")
    return bytes(value or [])


async def state_keys(admin: RestateAdmin, service: str) -> dict[str, Any]:
    rows = await admin.query(
        "SELECT service_key, count(*) AS n FROM state WHERE service_name = "
        f"{sql_text(service)} GROUP BY service_key ORDER BY service_key"
    )
    return {
        "service": service,
        "keys": [{"key": r["service_key"], "entries": int(r["n"])} for r in rows],
    }


# ---------------------------------------------------------------------------- awakeables
async def pending(admin: RestateAdmin, limit: int = 1000) -> dict[str, Any]:
    """Awakeables that unfinished invocations wait on, and workflow promises not yet
    completed, with the invocation waiting on each.

    An awakeable is known from a suspended invocation's ``suspended_waiting_for_signals``,
    or, while it runs, from its id in the invocation's commands (Restate journals no
    command for making one, so one whose id was never handed on is not listed). The
    journals of the newest 200 unfinished invocations are read for that.
    """
    rows = await admin.query(
        f"SELECT {_COLUMNS} FROM sys_invocation WHERE status <> 'completed' "
        "ORDER BY created_at DESC LIMIT 200"
    )
    rows.reverse()
    raw = await _journal_rows(admin, [r["id"] for r in rows])
    awakeables: list[dict[str, Any]] = []
    for r in rows:
        entries = _views(raw.get(r["id"], []), r["id"], _signals(r))
        for e in entries:
            if e["kind"] != "awakeable" or e["completed"] or len(awakeables) >= limit:
                continue
            awakeables.append(
                {
                    "id": e["payload"]["id"],
                    "invocation_id": r["id"],
                    "entry_index": e["index"],
                    "created_at": e["created_at"] or iso(r.get("modified_at")),
                    "service": r.get("target_service_name"),
                    "handler": r.get("target_handler_name"),
                    "key": r.get("target_service_key"),
                    "status": status_of(r),
                    "schema": None,  # Restate does not record the value's type
                }
            )
    open_promises = await admin.query(
        "SELECT service_name, service_key, key FROM sys_promise WHERE completed = false "
        f"ORDER BY service_name, service_key, key LIMIT {limit}"
    )
    waiters = await _promise_waiters(admin, open_promises)
    promises = []
    for p in open_promises:
        candidates = waiters.get((p["service_name"], p["service_key"]), [])
        # the invocation whose journal waits on this promise, else the oldest of the key
        w, entry = next(
            (
                (row, e["index"])
                for row, journal in candidates
                for e in journal
                if e["kind"] == "get_promise" and e["name"] == p["key"] and not e["completed"]
            ),
            (candidates[0][0] if candidates else {}, None),
        )
        promises.append(
            {
                "id": _promise_id(p["service_name"], p["service_key"], p["key"]),
                "service": p["service_name"],
                "key": p["service_key"],
                "name": p["key"],
                "invocation_id": w.get("id"),
                "entry_index": entry,
                "created_at": iso(w.get("created_at")),
                "handler": w.get("target_handler_name"),
                "status": status_of(w) if w else None,
                "schema": None,
            }
        )
    return {"awakeables": awakeables, "promises": promises}


async def _promise_waiters(
    admin: RestateAdmin, promises: list[dict[str, Any]]
) -> dict[tuple[str, str], list[tuple[dict[str, Any], list[dict[str, Any]]]]]:
    """(workflow, key) -> its unfinished invocations (oldest first) with their journals,
    in a query per workflow and one for the journals."""
    keys: dict[str, set[str]] = {}
    for p in promises:
        keys.setdefault(p["service_name"], set()).add(p["service_key"])
    rows: list[dict[str, Any]] = []
    for service, ks in keys.items():
        rows += await admin.query(
            f"SELECT {_COLUMNS} FROM sys_invocation WHERE target_service_name = "
            f"{sql_text(service)} AND target_service_key IN "
            f"({', '.join(sql_text(k) for k in sorted(ks))}) AND status <> 'completed' "
            "ORDER BY created_at"
        )
    journals = await _journals(admin, rows[:200])
    out: dict[tuple[str, str], list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
    for r in rows:
        key = (r["target_service_name"], r["target_service_key"])
        out.setdefault(key, []).append((r, journals.get(r["id"], [])))
    return out


def _promise_id(service: str, key: str, name: str) -> str:
    from urllib.parse import quote

    return "promise/" + "/".join(quote(p, safe="") for p in (service, key, name))


# ---------------------------------------------------------------------------- services
async def services(admin: RestateAdmin) -> dict[str, Any]:
    """Services and handlers in the shape of durable's ``/api/services``."""
    kinds = {"service": "service", "virtualobject": "object", "workflow": "workflow"}
    out = []
    for s in await admin.services():
        kind = kinds.get(str(s.get("ty", "")).lower(), "service")
        handlers = []
        for h in s.get("handlers", []):
            ty = str(h.get("ty") or "").lower()
            hkind = "service" if kind == "service" else (ty or "exclusive")
            handlers.append(
                {
                    "name": h.get("name"),
                    "kind": hkind,
                    "input_type": h.get("input_description") or "",
                    "output_type": h.get("output_description") or "",
                    "input_schema": _schema(h.get("input_json_schema")),
                    "output_schema": _schema(h.get("output_json_schema")),
                    "workflow_retention_s": None,
                }
            )
        out.append(
            {
                "name": s.get("name"),
                "kind": kind,
                "handlers": handlers,
                "retry_policy": s.get("retry_policy"),
                "deployment_id": s.get("deployment_id"),
                "revision": s.get("revision"),
            }
        )
    return {
        "services": out,
        "error": None,
        "app_error": None,
        "ingress_url": await admin.ingress_url(),
    }


def _schema(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None
