"""What the admin API shows: JSON-ready dicts built from the query module.

Every function here takes a store cursor (it runs on a reader thread) and, when a
runtime is up, a :class:`Live` snapshot of the engine's memory: the live status of
running invocations is only there (the store keeps the last durable status). Without a
runtime (``durable`` commands reading the store file read-only) ``live`` is ``None``.
The admin API and the offline CLI serve the very same dicts.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from durable import payloads
from durable.messages import EntryKind, JournalEntry
from durable.payloads import (
    AwakeablePayload,
    CallPayload,
    GetPromisePayload,
    Payload,
    RunPayload,
    SendPayload,
    SleepPayload,
)

from ..clock import to_dt
from ..engine import Snapshot
from ..lifecycle import TERMINAL, allowed_actions
from ..store import queries
from ..store.ops import InvocationRow
from ..store.queries import Cursor, InvocationFilter

__all__ = [
    "Live",
    "app_error",
    "iso",
    "parse_json",
    "promise_id",
    "list_invocations",
    "show_invocation",
    "state",
    "state_keys",
    "pending",
    "invocation_status",
    "entry_span",
    "caller",
]

#: the engine's snapshot of its memory (see :meth:`~durable.devtool.engine.Engine.snapshot`)
Live = Snapshot
MAX_PAGE = 1000


def invocation_status(row: InvocationRow, live: Live | None) -> str:
    """The status to show: the engine's when it has the invocation, else the store's."""
    return live.status(row) if live is not None else row.status


def iso(dt: datetime | None) -> str | None:
    """A store time (naive UTC) as ISO 8601 with a Z."""
    return None if dt is None else dt.isoformat() + "Z"


def parse_json(text: str | None) -> Any:
    """JSON text as a value; text that is not JSON stays text."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def promise_id(service: str, key: str, name: str) -> str:
    """How a workflow promise is named in lists and in ``durable awakeables resolve``."""
    return "promise/" + "/".join(quote(p, safe="") for p in (service, key, name))


# ---------------------------------------------------------------------------- waiting
def _payload(e: JournalEntry) -> Payload | None:
    """The entry's typed payload; None when it has none or it is not readable."""
    try:
        return payloads.decode(e.kind, e.payload)
    except ValueError:  # not JSON, or not an object: show the entry without it
        return None


def _entry_wait(e: JournalEntry) -> dict[str, Any]:
    p = _payload(e)
    awk_id = p.id or None if isinstance(p, AwakeablePayload) else None
    call_id = p.invocation_id or None if isinstance(p, CallPayload) else None
    k = e.kind
    if k is EntryKind.SLEEP:
        sleep = p if isinstance(p, SleepPayload) else SleepPayload()
        what = (
            f"timer until {iso(to_dt(sleep.wake_at / 1000))}"
            if sleep.wake_at
            else f"timer of {sleep.duration_ms} ms"
        )
    elif k is EntryKind.AWAKEABLE:
        what = f"awakeable {awk_id or '?'}"
    elif k is EntryKind.CALL:
        what = f"call {e.name} ({call_id or '?'})"
    elif k in (EntryKind.GET_PROMISE, EntryKind.PEEK_PROMISE, EntryKind.COMPLETE_PROMISE):
        what = f"promise {e.name!r}"
    elif k is EntryKind.ATTACH_INVOCATION:
        what = f"invocation {e.name}"
    elif k is EntryKind.TIME:
        what = "the runtime's clock"
    else:
        what = k.value + (f" {e.name!r}" if e.name else "")
    out: dict[str, Any] = {"index": e.index, "kind": k.value, "name": e.name, "what": what}
    if k is EntryKind.AWAKEABLE:
        out["awakeable_id"] = awk_id
    if k is EntryKind.CALL:
        out["invocation_id"] = call_id
    return out


def _waiting(
    row: InvocationRow, status: str, incomplete: list[JournalEntry], live: Live | None
) -> list[dict[str, Any]]:
    if status in TERMINAL:
        return []
    if status == "pending":
        owner = live.key_owner.get((row.service, row.key or "")) if live else None
        pos = live.queue_position(row.id) if live and live.queue_position else None
        what = f"its turn on key {row.key!r}" + (f" (held by {owner})" if owner else "")
        return [{"kind": "key", "what": what, "owner": owner, "queue_position": pos}]
    if status == "scheduled":
        return [{"kind": "start", "what": f"its start time {iso(row.scheduled_at)}"}]
    app = _app_wait(live) if status in ("ready", "backing-off") else []
    if status == "backing-off":
        return [{"kind": "retry", "what": f"retry at {iso(row.next_retry_at)}"}, *app]
    if app:
        return app
    if status == "paused":
        return [{"kind": "person", "what": "a person: resume, restart, cancel or kill it"}]
    entries = incomplete
    if status == "suspended" and row.waiting_on:
        on = set(json.loads(row.waiting_on))
        entries = [e for e in incomplete if e.index in on] or incomplete
    return [_entry_wait(e) for e in entries]


def _app_wait(live: Live | None) -> list[dict[str, Any]]:
    """No worker runs because the app fails to load: ready work waits for it."""
    if live is None or not live.app_error:
        return []
    first = live.app_error.splitlines()[0]
    return [{"kind": "app", "what": f"the app to load ({first}); fix the file and it reloads"}]


def app_error(engine: Any) -> dict[str, Any] | None:
    """Why the app does not load (``error``, its first line ``summary``, ``since``), or
    None: what the dashboard's banner, the TUI's header and the CLI show."""
    error = engine.service_unavailable
    if not error:
        return None
    since = engine.service_unavailable_since
    return {"error": error, "summary": error.splitlines()[0], "since": iso(since)}


def _summary(row: InvocationRow, status: str, waiting: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "service": row.service,
        "handler": row.handler,
        "key": row.key,
        "status": status,
        "created_at": iso(row.created_at),
        "modified_at": iso(row.modified_at),
        "completed_at": iso(row.completed_at),
        "attempt": row.attempt,
        "last_error": (row.last_error or "").splitlines()[0] if row.last_error else None,
        "next_retry_at": iso(row.next_retry_at),
        "scheduled_at": iso(row.scheduled_at),
        "journal_length": row.journal_length,
        "idempotency_key": row.idempotency_key,
        "parent_id": row.parent_id,
        "restarted_from": row.restarted_from,
        "failure": (
            {"code": row.failure_code, "message": row.failure_message}
            if row.failure_code is not None
            else None
        ),
        "waiting": waiting,
        "waits_on": "; ".join(w["what"] for w in waiting) or None,
        "actions": allowed_actions(status),
    }


# ---------------------------------------------------------------------------- timeline
#: kinds that wait for the runtime: their bar runs from the call to the completion
_WAITS = {"sleep", "awakeable", "call", "get_promise", "attach_invocation", "time"}


def entry_span(
    e: JournalEntry, created: datetime | None, completed: datetime | None
) -> tuple[datetime | None, datetime | None, datetime | None]:
    """When an entry's bar starts and ends, and a sleep's planned end (``None`` end:
    still going). A ``ctx.run`` bar is its body's recorded duration, ending when the
    runtime recorded it; a delayed send's runs to the callee's start."""
    if created is None:
        return None, None, None
    k = e.kind.value
    if k == "run":
        p = _payload(e)
        ms = p.duration_ms if isinstance(p, RunPayload) else None
        return (created - timedelta(milliseconds=ms) if ms else created), created, None
    if k in _WAITS:
        planned = None
        if k == "sleep":
            p = _payload(e)
            if isinstance(p, SleepPayload) and p.wake_at:
                planned = to_dt(p.wake_at / 1000)
        return created, (completed if e.completed else None), planned
    if k == "one_way_call":
        p = _payload(e)
        delay = p.delay_ms if isinstance(p, SendPayload) else 0
        return created, created + timedelta(milliseconds=delay), None
    return created, completed or created, None


def caller(cur: Cursor, row: InvocationRow) -> dict[str, Any] | None:
    """Who made this invocation: the call entry waiting for it, or the send entry that
    started it (found by the child's id in sends journaled at its creation time)."""
    if row.parent_id is not None:
        return {"id": row.parent_id, "entry": row.parent_entry, "kind": "call"}
    found = queries.sender(cur, row.id, row.created_at)
    return None if found is None else {"id": found[0], "entry": found[1], "kind": "send"}


# ---------------------------------------------------------------------------- lists
def _cursor_key(
    cur: Cursor, live_rows: dict[str, InvocationRow], inv_id: str | None
) -> tuple[Any, str] | None:
    if inv_id is None:
        return None
    row = live_rows.get(inv_id) or queries.invocation(cur, inv_id)
    if row is None:  # an unknown cursor: fall back to the id alone
        return (datetime.min, inv_id)
    return (row.created_at, row.id)


def list_invocations(
    cur: Cursor,
    live: Live | None,
    f: InvocationFilter,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = 50,
    count: bool = False,
    newest_first: bool = True,
) -> dict[str, Any]:
    """One page of invocations (newest first) with the cursors of its neighbours."""
    limit = max(0, min(limit, MAX_PAGE))
    live_rows = dict(live.rows) if live else {}
    exclude = list(live_rows) if f.statuses else []
    searched_since = None
    stored: list[InvocationRow]
    if queries.is_text_search(f) and limit == 0:
        stored = []  # a count alone (the dashboard's chips)
    elif queries.is_text_search(f) and before is None and newest_first:
        found = queries.search_invocations(
            cur, f, exclude_ids=exclude, after=after, limit=limit + 1
        )
        stored, searched_since = found.rows, found.searched_since
    else:
        stored = queries.list_invocations(
            cur,
            f,
            exclude_ids=exclude,
            after=after,
            before=before,
            limit=limit + 1,
            newest_first=newest_first,
        )
    rows: dict[str, tuple[InvocationRow, str]] = {}
    for r in stored:
        r = live_rows.get(r.id, r)
        rows[r.id] = (r, invocation_status(r, live))
    # invocations in memory that match (their stored row may lag or say another status);
    # the order is (created_at, id), as in the store's keyset
    after_key = _cursor_key(cur, live_rows, after)
    before_key = _cursor_key(cur, live_rows, before)
    for r in live_rows.values():
        if r.id in rows or not f.matches(r, r.status):
            continue
        k = (r.created_at, r.id)
        if after_key is not None and not (k < after_key if newest_first else k > after_key):
            continue
        if before_key is not None and not (k > before_key if newest_first else k < before_key):
            continue
        rows[r.id] = (r, r.status)
    if f.statuses:
        rows = {k: v for k, v in rows.items() if v[1] in f.statuses}
    ordered = sorted(rows.values(), key=lambda t: (t[0].created_at, t[0].id), reverse=newest_first)
    if before is not None:
        more_newer = len(ordered) > limit
        page = ordered[-limit:] if limit else []
        has_older = True
        has_newer = more_newer
    else:
        page = ordered[:limit]
        has_older = len(ordered) > limit
        has_newer = after is not None
    unfinished = [r.id for r, st in page if st not in TERMINAL]
    incomplete = queries.incomplete_entries(cur, unfinished)
    items = [_summary(r, st, _waiting(r, st, incomplete.get(r.id, []), live)) for r, st in page]
    out: dict[str, Any] = {
        "invocations": items,
        "next": items[-1]["id"] if items and has_older else None,
        "prev": items[0]["id"] if items and has_newer else None,
    }
    if searched_since is not None:  # the search's time ran out before the oldest row
        out["searched_since"] = iso(searched_since)
        out["note"] = (
            f"the search read the invocations created since {iso(searched_since)} "
            "(time limit): narrow it, or add until= that time to search older ones"
        )
    if count:
        # Without a status filter the store counts every invocation (a live one only
        # lags in status); with one, live invocations are left out there and counted here.
        if queries.is_text_search(f):  # bounded in time, as the page
            n, counted_since = queries.count_search(cur, f, exclude)
            if counted_since is not None:
                out["total_since"] = iso(counted_since)
        else:
            n = queries.count_invocations(cur, f, exclude)
        if f.statuses:
            n += sum(1 for r in live_rows.values() if f.matches(r, r.status))
        out["total"] = n
    return out


# ---------------------------------------------------------------------------- one
def show_invocation(
    cur: Cursor, live: Live | None, inv_id: str, with_state: bool = True
) -> dict[str, Any] | None:
    """Everything about one invocation: row, request, journal (with state), waits."""
    row = queries.invocation(cur, inv_id)
    mem = live.rows.get(inv_id) if live else None
    if mem is not None:
        row = mem
    if row is None:
        return None
    status = invocation_status(row, live)
    timed = queries.journal_timed(cur, inv_id)
    mem_journal = live.journals.get(inv_id) if live else None
    entries: list[tuple[JournalEntry, datetime | None, datetime | None]] = list(timed)
    if mem_journal:
        for i, e in enumerate(mem_journal):
            if i < len(entries):
                if e.completed and not entries[i][0].completed:
                    entries[i] = (e, entries[i][1], None)
            else:
                entries.append((e, None, None))
    incomplete = [e for e, _c, _d in entries if not e.completed and e.kind.value not in ("input",)]
    waiting = _waiting(row, status, incomplete, live)
    body = asdict(row)
    for k, v in body.items():
        if isinstance(v, datetime):
            body[k] = iso(v)
    body["status"] = status
    body.update(_summary(row, status, waiting))
    body["last_error"] = row.last_error
    body["request"] = {
        "headers": parse_json(row.headers) or {},
        "body": parse_json(entries[0][0].payload) if entries else parse_json(row.input),
    }
    body["output_value"] = parse_json(row.output)
    body["queue_position"] = live.queue_position(inv_id) if live and live.queue_position else None
    body["caller"] = caller(cur, row)
    states = (
        _state_timeline(cur, row, entries)
        if with_state and row.service_kind in ("object", "workflow") and entries
        else None
    )
    journal = []
    for pos, (e, created, completed) in enumerate(entries):
        started, ended, planned = entry_span(e, created, completed)
        p = _payload(e) if e.kind.value in ("call", "one_way_call") else None
        item: dict[str, Any] = {
            "index": e.index,
            "kind": e.kind.value,
            "name": e.name,
            "payload": _shown_payload(e),
            "result": parse_json(e.result),
            "failure": (
                {"code": e.failure.code, "message": e.failure.message} if e.failure else None
            ),
            "completed": e.completed,
            "created_at": iso(created),
            "completed_at": iso(completed),
            "duration_ms": (
                round((ended - started).total_seconds() * 1000, 3)
                if started is not None and ended is not None and ended > started
                else None
            ),
            "started_at": iso(started),
            "ended_at": iso(ended),
            "planned_end": iso(planned),
            "child_id": (p.invocation_id or None) if isinstance(p, CallPayload) else None,
        }
        if states is not None:
            item["state"] = states[pos]
        journal.append(item)
    body["journal"] = journal
    body["attempts"] = [
        {
            **t,
            "started_at": iso(t["started_at"]),
            "ended_at": iso(t["ended_at"]),
            "ms": round((t["ended_at"] - t["started_at"]).total_seconds() * 1000, 3),
        }
        for t in queries.attempts(cur, inv_id)
    ]
    body["logs"] = [{**g, "at": iso(g["at"])} for g in queries.logs(cur, inv_id)]
    body["origin"] = origin(cur, inv_id)
    return body


def origin(cur: Cursor, inv_id: str) -> dict[str, Any] | None:
    """Where a pulled copy came from (``durable pull``), with its key's state on the
    cluster then (name -> value); None for a local invocation."""
    o = queries.origin(cur, inv_id)
    if o is None:
        return None
    state = parse_json(o["state"])
    return {
        "cluster": o["cluster"],
        "remote_id": o["remote_id"],
        "remote_status": o["remote_status"],
        "pulled_at": iso(o["pulled_at"]),
        "state": {k: parse_json(v) for k, v in state.items()} if isinstance(state, dict) else None,
    }


def _shown_payload(e: JournalEntry) -> Any:
    """An entry's payload as JSON; a sleep's wake-up time (stored as epoch ms) as an
    ISO time, and its duration in words beside the milliseconds."""
    value = parse_json(e.payload)
    if e.kind is EntryKind.SLEEP and isinstance(value, dict):
        if isinstance(value.get("wake_at"), (int, float)):
            value["wake_at"] = iso(to_dt(value["wake_at"] / 1000))
        if isinstance(value.get("duration_ms"), (int, float)):
            value["duration"] = _words(value["duration_ms"] / 1000)
    return value


def _words(seconds: float) -> str:
    """``1h 2m 3s``, ``250 ms``."""
    if seconds < 1:
        return f"{seconds * 1000:g} ms"
    out, rest = [], round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return " ".join(out)


def _state_timeline(
    cur: Cursor,
    row: InvocationRow,
    entries: list[tuple[JournalEntry, datetime | None, datetime | None]],
) -> list[dict[str, Any]]:
    """The key's state just after each entry (see ``queries.state_as_of``), in one sweep."""
    key = row.key or ""
    t0 = entries[0][1]
    if t0 is None:
        return [{} for _ in entries]
    current = queries.state_as_of(cur, row.service, key, row.id, 0)
    t_last = max((c for _e, c, _d in entries if c is not None), default=t0)
    changes = queries.state_changes(cur, row.service, key, t0, t_last)
    out: list[dict[str, Any]] = []
    pos = 0
    t_i = t0
    for e, created, _done in entries:
        if created is not None:
            t_i = created
        while pos < len(changes):
            name, op, value, inv, idx, at = changes[pos]
            own = inv == row.id
            if (own and idx is not None and idx > e.index) or (not own and at > t_i):
                break
            if op == "set" and name is not None and value is not None:
                current[name] = value
            elif op == "clear" and name is not None:
                current.pop(name, None)
            elif op == "clear_all":
                current.clear()
            pos += 1
        out.append({k: parse_json(v) for k, v in sorted(current.items())})
    return out


# ---------------------------------------------------------------------------- state
def state(
    cur: Cursor,
    service: str,
    key: str,
    invocation_id: str | None = None,
    entry: int | None = None,
) -> dict[str, Any]:
    """A key's state now, or as of an invocation's entry (LookupError if it has none)."""
    if invocation_id is not None:
        raw = queries.state_as_of(cur, service, key, invocation_id, entry or 0)
        as_of = {"invocation_id": invocation_id, "entry": entry or 0}
    else:
        raw = queries.state(cur, service, key)
        as_of = None
    return {
        "service": service,
        "key": key,
        "as_of": as_of,
        "state": {k: parse_json(v) for k, v in sorted(raw.items())},
    }


def state_keys(cur: Cursor, service: str) -> dict[str, Any]:
    return {
        "service": service,
        "keys": [{"key": k, "entries": n} for k, n in queries.state_keys(cur, service)],
    }


# ---------------------------------------------------------------------------- awakeables
def pending(cur: Cursor, live: Live | None, limit: int = 1000) -> dict[str, Any]:
    """Pending awakeables and workflow promises, with the invocation waiting on each."""

    def status_of(inv_id: str, stored: str) -> str:
        return live.status_of(inv_id, stored) if live is not None else stored

    awakeables = [
        {
            "id": awk,
            "invocation_id": inv,
            "entry_index": idx,
            "created_at": iso(at),
            "service": service,
            "handler": handler,
            "key": key,
            "status": status_of(inv, st),
        }
        for awk, inv, idx, at, service, handler, key, st in queries.pending_awakeables(cur, limit)
    ]
    promises = [
        {
            "id": promise_id(service, key, name),
            "service": service,
            "key": key,
            "name": name,
            "invocation_id": inv,
            "entry_index": idx,
            "created_at": iso(at),
            "handler": handler,
            "status": status_of(inv, st),
        }
        for service, key, name, inv, idx, at, handler, st in queries.pending_promises(cur, limit)
    ]
    return {"awakeables": awakeables, "promises": promises}


def pending_with_schemas(cur: Cursor, live: Live | None) -> dict[str, Any]:
    """:func:`pending`, each item with the ``schema`` of the value it expects (the JSON
    schema its entry records from the handler's ``type_hint=``, else None)."""
    out = pending(cur, live)
    pairs = [(p["invocation_id"], p["entry_index"]) for k in out.values() for p in k]
    entries = queries.journal_entries(cur, pairs)
    for items in out.values():
        for p in items:
            p["schema"] = _schema_of(entries.get((p["invocation_id"], p["entry_index"])))
    return out


def _schema_of(e: JournalEntry | None) -> dict | None:
    try:
        p = payloads.decode(e.kind, e.payload) if e is not None else None
    except ValueError:  # not a JSON object: no form hint
        return None
    schema = p.schema if isinstance(p, AwakeablePayload | GetPromisePayload) else None
    return schema if isinstance(schema, dict) else None
