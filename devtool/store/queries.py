"""Read queries over the store, shared by the engine, admin API, dashboard and CLI.

Each function takes a DuckDB cursor and returns plain values or frozen rows; none of
them writes. Callers run them off the event loop (``Store.read``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import duckdb
from durable.messages import EntryKind, Failure, JournalEntry

from .ops import DB_COLUMNS, TERMINAL_SQL, TERMINAL_STATUSES, InvocationRow, row_from_db

__all__ = [
    "invocation",
    "journal",
    "journal_and_order",
    "invocations_with_journals",
    "state",
    "state_history",
    "state_as_of",
    "StateChange",
    "finished_workflows",
    "active_invocations",
    "pending_timers",
    "awakeable",
    "promise",
    "promise_waiters",
    "idempotent_invocation",
    "woken_suspended",
    "pending_waits",
    "outcomes",
    "entry_status",
    "Cursor",
    "InvocationFilter",
    "list_invocations",
    "count_invocations",
    "status_counts",
    "journal_timed",
    "attempts",
    "logs",
    "origin",
    "incomplete_entries",
    "entry_time",
    "state_as_of",
    "state_changes",
    "state_keys",
    "pending_awakeables",
    "pending_promises",
    "table_names",
    "status_counts_except",
    "journal_entries",
    "sender",
    "call_entries",
    "invocations_by_id",
    "TEXT_SEARCH_SQL",
    "SearchPage",
    "search_invocations",
    "count_search",
    "is_text_search",
]

Cursor = duckdb.DuckDBPyConnection
_INV_SELECT = "SELECT " + ", ".join(DB_COLUMNS) + " FROM invocations"
_TERMINAL = TERMINAL_STATUSES
_LIVE = ("pending", "scheduled", "ready", "running", "suspended", "backing-off", "paused")
_LIVE_SQL = ", ".join(f"'{s}'" for s in _LIVE)


def _one(cur: Cursor, sql: str, params: list) -> tuple | None:
    # fetchall, never fetchone: an unfinished result keeps the cursor's transaction open
    rows = cur.execute(sql, params).fetchall()
    return rows[0] if rows else None


def _inv(row: tuple | None) -> InvocationRow | None:
    return row_from_db(row) if row else None


def invocation(cur: Cursor, invocation_id: str) -> InvocationRow | None:
    """One invocation by id."""
    return _inv(_one(cur, _INV_SELECT + " WHERE id = ?", [invocation_id]))


def journal(cur: Cursor, invocation_id: str) -> list[JournalEntry]:
    """An invocation's journal, in index order."""
    rows = cur.execute(
        "SELECT idx, kind, name, payload, result, failure_code, failure_message, completed "
        "FROM journal WHERE invocation_id = ? ORDER BY idx",
        [invocation_id],
    ).fetchall()
    return [
        JournalEntry(i, EntryKind(k), n, p, r, Failure(fc, fm) if fc is not None else None, bool(c))
        for i, k, n, p, r, fc, fm, c in rows
    ]


def journal_and_order(cur: Cursor, invocation_id: str) -> tuple[list[JournalEntry], list[int]]:
    """An invocation's journal, and the indexes of its completed entries in the order
    they were completed (what a combinator deciding on replay needs)."""
    rows = cur.execute(
        "SELECT idx, kind, name, payload, result, failure_code, failure_message, completed, "
        "completed_at FROM journal WHERE invocation_id = ? ORDER BY idx",
        [invocation_id],
    ).fetchall()
    entries = [
        JournalEntry(i, EntryKind(k), n, p, r, Failure(fc, fm) if fc is not None else None, bool(c))
        for i, k, n, p, r, fc, fm, c, _at in rows
    ]
    done = sorted((r for r in rows if r[7]), key=lambda r: (r[8] or datetime.min, r[0]))
    return entries, [r[0] for r in done]


def invocations_with_journals(
    cur: Cursor, invocation_ids: list[str]
) -> dict[str, tuple[InvocationRow, list[JournalEntry], list[int]]]:
    """Several invocations with their journals and completion orders, in two queries
    (waking many suspended invocations at once costs two reads, not two each)."""
    rows = cur.execute(_INV_SELECT + " WHERE id IN (SELECT unnest(?))", [invocation_ids]).fetchall()
    out: dict[str, tuple[InvocationRow, list[JournalEntry], list[int]]] = {
        r[0]: (row_from_db(r), [], []) for r in rows
    }
    entries = cur.execute(
        "SELECT invocation_id, idx, kind, name, payload, result, failure_code, "
        "failure_message, completed, completed_at FROM journal "
        "WHERE invocation_id IN (SELECT unnest(?)) ORDER BY invocation_id, idx",
        [invocation_ids],
    ).fetchall()
    done: dict[str, list[tuple]] = {}
    for inv_id, i, k, n, p, r, fc, fm, c, at in entries:
        if inv_id not in out:
            continue
        out[inv_id][1].append(
            JournalEntry(
                i, EntryKind(k), n, p, r, Failure(fc, fm) if fc is not None else None, bool(c)
            )
        )
        if c:
            done.setdefault(inv_id, []).append((at or datetime.min, i))
    for inv_id, pairs in done.items():
        out[inv_id][2].extend(i for _at, i in sorted(pairs))
    return out


def state(cur: Cursor, service: str, key: str) -> dict[str, str]:
    """The current state of one object or workflow key: name -> JSON text."""
    rows = cur.execute(
        "SELECT name, value FROM state WHERE service = ? AND key = ?", [service, key]
    ).fetchall()
    return dict(rows)


@dataclass(frozen=True, slots=True)
class StateChange:
    """One row of ``state_history``: a set, clear or clear_all, and who made it."""

    seq: int
    name: str | None  # None for clear_all
    op: str  # "set" | "clear" | "clear_all"
    value: str | None  # JSON text for "set"
    invocation_id: str | None
    entry_index: int | None
    changed_at: datetime


def state_history(cur: Cursor, service: str, key: str) -> list[StateChange]:
    """Every state change of one object or workflow key, in the order they were made."""
    rows = cur.execute(
        "SELECT seq, name, op, value, invocation_id, entry_index, changed_at FROM state_history "
        "WHERE service = ? AND key = ? ORDER BY seq",
        [service, key],
    ).fetchall()
    return [StateChange(*r) for r in rows]


def state_as_of(
    cur: Cursor, service: str, key: str, invocation_id: str, entry_index: int
) -> dict[str, str]:
    """The state of one key as it was once entry ``entry_index`` of ``invocation_id`` was
    written: what a handler reading state at that entry saw, name -> JSON text.

    Changes apply in commit order (``seq``; timestamps can tie, under a virtual clock
    always do). An exclusive handler holds its key, so no other invocation changes the
    state between its own changes: the state as of its entry N is every change up to
    its last one at or before N (or, if it made none yet, every change before its
    first). For an invocation that changed nothing (a shared handler), it is every
    change made up to the time its entry N was written.
    """
    if entry_time(cur, invocation_id, entry_index) is None:
        raise LookupError(f"invocation {invocation_id} has no journal entry {entry_index}")
    changes = state_history(cur, service, key)
    own = [c for c in changes if c.invocation_id == invocation_id]
    upto = [c.seq for c in own if c.entry_index is not None and c.entry_index <= entry_index]
    if upto:
        keep = [c for c in changes if c.seq <= max(upto)]
    elif own:
        first = min(c.seq for c in own)
        keep = [c for c in changes if c.seq < first]
    else:
        at = _one(
            cur,
            "SELECT max(created_at) FROM journal WHERE invocation_id = ? AND idx <= ?",
            [invocation_id, entry_index],
        )
        if at is None or at[0] is None:
            return {}
        keep = [c for c in changes if c.changed_at <= at[0]]
    out: dict[str, str] = {}
    for c in keep:
        if c.op == "clear_all":
            out.clear()
        elif c.op == "clear" or c.value is None:
            out.pop(c.name or "", None)
        else:
            out[c.name or ""] = c.value
    return out


def finished_workflows(cur: Cursor, service: str, handler: str, before: datetime) -> list[str]:
    """Ids (keys) of a workflow whose main run finished before ``before`` (copies pulled
    from a cluster are not runs of this runtime: they never make a key old)."""
    rows = cur.execute(
        "SELECT key FROM invocations WHERE service = ? AND handler = ? "
        f"AND status IN ({TERMINAL_SQL}) AND modified_at < ? "
        "AND id NOT IN (SELECT invocation_id FROM origins)",
        [service, handler, before],
    ).fetchall()
    return [r[0] for r in rows]


def active_invocations(cur: Cursor) -> list[InvocationRow]:
    """Every invocation not yet in a terminal status, oldest first (by creation time:
    ids named by an idempotency key do not sort by time)."""
    # the live statuses named (not "NOT IN terminal"): a filter the scan can apply per
    # row group from its min/max, so a long history of finished rows is mostly skipped
    rows = cur.execute(
        _INV_SELECT + f" WHERE status IN ({_LIVE_SQL}) ORDER BY created_at, id"
    ).fetchall()
    return [row_from_db(r) for r in rows]


def pending_timers(cur: Cursor) -> list[tuple[str, int, datetime]]:
    """Timers not yet fired: (invocation id, entry index, fire time)."""
    return cur.execute("SELECT invocation_id, entry_index, fire_at FROM timers").fetchall()


def awakeable(cur: Cursor, awakeable_id: str) -> tuple[str, int, bool, str | None] | None:
    """(invocation id, entry index, completed, invocation status) of an awakeable, or None."""
    row = _one(
        cur,
        "SELECT a.invocation_id, a.entry_index, coalesce(j.completed, false), i.status "
        "FROM awakeables a "
        "LEFT JOIN journal j ON j.invocation_id = a.invocation_id AND j.idx = a.entry_index "
        "LEFT JOIN invocations i ON i.id = a.invocation_id "
        "WHERE a.id = ?",
        [awakeable_id],
    )
    return (row[0], int(row[1]), bool(row[2]), row[3]) if row else None


def promise(
    cur: Cursor, service: str, key: str, name: str
) -> tuple[str | None, Failure | None] | None:
    """A completed workflow promise as (result, failure), or None when not completed."""
    row = _one(
        cur,
        "SELECT result, failure_code, failure_message FROM promises "
        "WHERE service = ? AND key = ? AND name = ?",
        [service, key, name],
    )
    if row is None:
        return None
    return row[0], (Failure(row[1], row[2]) if row[1] is not None else None)


def promise_waiters(cur: Cursor, service: str, key: str, name: str) -> list[tuple[str, int]]:
    """Incomplete ``get_promise`` entries waiting on a workflow promise."""
    return cur.execute(
        "SELECT j.invocation_id, j.idx FROM journal j JOIN invocations i ON i.id = j.invocation_id "
        "WHERE j.kind = 'get_promise' AND NOT j.completed AND j.name = ? AND i.service = ? "
        f"AND i.key = ? AND i.status NOT IN ({TERMINAL_SQL})",
        [name, service, key],
    ).fetchall()


def idempotent_invocation(cur: Cursor, scope: str, idempotency_key: str) -> str | None:
    """The invocation recorded for an idempotency key, if any."""
    row = _one(
        cur,
        "SELECT invocation_id FROM idempotency WHERE scope = ? AND idempotency_key = ?",
        [scope, idempotency_key],
    )
    return row[0] if row else None


# ---------------------------------------------------------------------------------------
# Admin API, dashboard and CLI reads (lists with keyset paging, journals with timestamps,
# state as of an entry, pending awakeables and promises).


@dataclass(frozen=True, slots=True)
class InvocationFilter:
    """What a list of invocations is narrowed to; every field is optional."""

    service: str | None = None
    handler: str | None = None
    key: str | None = None
    statuses: tuple[str, ...] = ()
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    id_contains: str | None = None
    text: str | None = None  # in the id, input, output, failure or last error

    def matches(self, row: InvocationRow, status: str) -> bool:
        """The same test in Python, for rows that live only in the engine's memory."""
        return (
            (self.service is None or row.service == self.service)
            and (self.handler is None or row.handler == self.handler)
            and (self.key is None or row.key == self.key)
            and (not self.statuses or status in self.statuses)
            and (self.since is None or row.created_at >= self.since)
            and (self.until is None or row.created_at < self.until)
            and (self.id_contains is None or self.id_contains.lower() in row.id)
            and (self.text is None or _text_matches(self.text, row))
        )


def is_text_search(f: InvocationFilter) -> bool:
    """The filter searches text (not only an id prefix, which is a cheap range)."""
    return bool(f.text) and not (f.text or "").lower().startswith("inv_")


def _text_matches(text: str, row: InvocationRow) -> bool:
    low = text.lower()
    if low.startswith("inv_"):
        return row.id.startswith(low)
    fields = (row.input, row.output, row.failure_message, row.last_error)
    return low in row.id or any(f is not None and low in f.lower() for f in fields)


#: what a text search reads: the input, output, failure and last error, lower case
TEXT_SEARCH_SQL = (
    "lower(concat_ws(chr(10), attrs->>'input', attrs->>'output', "
    "attrs->>'failure_message', attrs->>'last_error'))"
)


def _raw_needle(text: str) -> str | None:
    """The longest run of the search text that reads the same inside the ``attrs`` JSON
    (printable ASCII but quotes and backslashes: JSON escapes the rest; nor ``%`` and
    ``_``: an ESCAPE clause makes DuckDB's ILIKE 3x slower), as an ILIKE pattern: a
    cheap test of the raw text that every match passes, before any JSON is parsed."""
    runs = re.split(r'[^\x20-\x7e]|["\\%_]', text)
    best = max(runs, key=len)
    return None if len(best) < 2 else f"%{best}%"


#: a text search reads back from the newest invocation in windows this long, growing
#: eightfold, until a page is full or its time is spent (it says where it stopped)
SEARCH_WINDOW = timedelta(minutes=1)
SEARCH_BUDGET_S = 1.0


def _growth(started: float, window: timedelta, prev: timedelta, deadline: float) -> float | None:
    """How much the search window may grow (2x-8x) for its next slice to end near the
    deadline, judging by what the last slice (``prev`` to ``window`` back) took and
    assuming a steady rate of invocations; None: the next one would not fit."""
    now = time.monotonic()
    left = deadline - now
    took = max(now - started, 1e-4)
    grow = 1 + left / took * ((window - prev) / window)
    return None if grow < 1.5 else min(8.0, max(2.0, grow))


@dataclass(frozen=True)
class SearchPage:
    rows: list[InvocationRow]
    searched_since: datetime | None  # rows created before it were not read (time spent)


def search_invocations(
    cur: Cursor,
    f: InvocationFilter,
    *,
    exclude_ids: list[str] | None = None,
    after: str | None = None,
    limit: int = 50,
    budget_s: float = SEARCH_BUDGET_S,
) -> SearchPage:
    """A newest-first page of a text search, bounded in time: it reads slices of
    creation time back from the newest invocation (or ``after``), each up to eight
    times longer than the one before but sized to end by the deadline (zone maps prune
    each scan to its slice), so a common word costs one small slice and a rare one
    about ``budget_s``."""
    deadline = time.monotonic() + budget_s
    bounds = _one(cur, "SELECT min(created_at), max(created_at) FROM invocations", [])
    if bounds is None or bounds[0] is None:
        return SearchPage([], None)
    oldest, newest = bounds
    if after is not None:
        at = _one(cur, "SELECT created_at FROM invocations WHERE id = ?", [after])
        newest = at[0] if at else newest
    if f.until is not None:
        newest = min(newest, f.until)
    window, prev = SEARCH_WINDOW, timedelta(0)
    rows: list[InvocationRow] = []
    until = f.until  # each slice reads [since, until): newer slices first, none twice
    while True:
        since = newest - window
        if f.since is not None:
            since = max(since, f.since)
        g = replace(f, since=since, until=until)
        t0 = time.monotonic()
        rows += list_invocations(
            cur, g, exclude_ids=exclude_ids, after=after, limit=limit - len(rows)
        )
        if len(rows) >= limit or since <= oldest or (f.since and since <= f.since):
            return SearchPage(rows, None)
        grow = _growth(t0, window, prev, deadline)
        if grow is None:
            return SearchPage(rows, since)
        until, prev = since, window
        window *= grow


def _where(f: InvocationFilter, exclude_ids: list[str]) -> tuple[list[str], list]:
    conds: list[str] = []
    params: list = []
    for col, value in (("service", f.service), ("handler", f.handler), ("key", f.key)):
        if value is not None:
            conds.append(f"{col} = ?")
            params.append(value)
    if f.statuses:  # a literal list: DuckDB pushes it into the scan (unnest(?) does not)
        conds.append(f"status IN ({', '.join('?' * len(f.statuses))})")
        params.extend(f.statuses)
        if exclude_ids:  # their live status is in memory: the caller merges them
            conds.append("id NOT IN (SELECT unnest(?))")
            params.append(exclude_ids)
    if f.since is not None:
        conds.append("created_at >= ?")
        params.append(f.since)
    if f.until is not None:
        conds.append("created_at < ?")
        params.append(f.until)
    if f.id_contains:
        text = f.id_contains.lower()
        if text.startswith("inv_"):  # a prefix: a range on the sorted ids (zone maps prune)
            conds.append("id >= ? AND id < ?")
            params.extend([text, text + "~"])
        else:
            conds.append("contains(id, ?)")
            params.append(text)
    if f.text:
        text = f.text.lower()
        if text.startswith("inv_"):
            conds.append("id >= ? AND id < ?")
            params.extend([text, text + "~"])
        else:  # a scan of rows' JSON (see search_invocations); a cheap raw test first
            needle = _raw_needle(text)
            if needle is None:
                conds.append(f"(contains(id, ?) OR contains({TEXT_SEARCH_SQL}, ?))")
                params.extend([text, text])
            else:  # CASE: the JSON is read only where the raw test passed
                conds.append(
                    f"(contains(id, ?) OR CASE WHEN attrs ILIKE ? "
                    f"THEN contains({TEXT_SEARCH_SQL}, ?) ELSE false END)"
                )
                params.extend([text, needle, text])
    return conds, params


def list_invocations(
    cur: Cursor,
    f: InvocationFilter,
    *,
    exclude_ids: list[str] | None = None,
    after: str | None = None,
    before: str | None = None,
    limit: int = 50,
    newest_first: bool = True,
) -> list[InvocationRow]:
    """A page of invocations by keyset on (created_at, id), never OFFSET.

    Newest first: ``after`` gives the page older than that id, ``before`` the page newer
    than it (returned newest first as well). With a status filter, ``exclude_ids`` (the
    invocations whose live status is in the engine's memory) are left out.
    """
    conds, params = _where(f, exclude_ids or [])
    ascending = not newest_first
    # Keyset on (created_at, id): ids are time-ordered, except the ids derived from an
    # idempotency key (the same id for every caller), so creation time leads the order.
    at = "(SELECT created_at FROM invocations WHERE id = ?)"
    # the plain range on created_at lets DuckDB prune row groups by their zone maps
    if after is not None:
        op = "<" if newest_first else ">"
        conds.append(f"created_at {op}= {at} AND (created_at, id) {op} ({at}, ?)")
        params.extend([after, after, after])
    if before is not None:
        op = ">" if newest_first else "<"
        conds.append(f"created_at {op}= {at} AND (created_at, id) {op} ({at}, ?)")
        params.extend([before, before, before])
        ascending = not ascending
    sql = _INV_SELECT + (" WHERE " + " AND ".join(conds) if conds else "")
    order = "ASC" if ascending else "DESC"
    sql += f" ORDER BY created_at {order}, id {order} LIMIT ?"
    rows = [row_from_db(r) for r in cur.execute(sql, [*params, limit]).fetchall()]
    if before is not None:
        rows.reverse()
    return rows


def sender(cur: Cursor, child_id: str, created_at: datetime) -> tuple[str, int] | None:
    """The send entry that started ``child_id``: journaled in the same commit as the
    child's row, so at its creation time (zone maps prune the scan to that moment)."""
    row = _one(
        cur,
        "SELECT invocation_id, idx FROM journal WHERE created_at = ? "
        "AND kind = 'one_way_call' AND contains(payload, ?) ORDER BY invocation_id LIMIT 1",
        [created_at, f'"invocation_id": "{child_id}"'],
    )
    return None if row is None else (row[0], int(row[1]))


def call_entries(
    cur: Cursor, invocation_ids: list[str]
) -> list[tuple[str, int, str, str | None, datetime, datetime | None]]:
    """The call and send entries of some invocations: (id, index, kind, payload,
    created_at, completed_at), in id and index order."""
    if not invocation_ids:
        return []
    return cur.execute(
        "SELECT invocation_id, idx, kind, payload, created_at, completed_at FROM journal "
        "WHERE invocation_id IN (SELECT unnest(?)) AND kind IN ('call', 'one_way_call') "
        "ORDER BY invocation_id, idx",
        [invocation_ids],
    ).fetchall()


def invocations_by_id(cur: Cursor, ids: list[str]) -> dict[str, InvocationRow]:
    """Some invocations by id (unknown ones left out)."""
    if not ids:
        return {}
    rows = cur.execute(_INV_SELECT + " WHERE id IN (SELECT unnest(?))", [ids]).fetchall()
    return {r.id: r for r in map(row_from_db, rows)}


def count_search(
    cur: Cursor,
    f: InvocationFilter,
    exclude_ids: list[str] | None = None,
    budget_s: float = SEARCH_BUDGET_S,
) -> tuple[int, datetime | None]:
    """How many stored invocations a text search matches, counted in the slices
    :func:`search_invocations` reads, within the same time; and where it stopped
    (``None``: every row was read)."""
    deadline = time.monotonic() + budget_s
    bounds = _one(cur, "SELECT min(created_at), max(created_at) FROM invocations", [])
    if bounds is None or bounds[0] is None:
        return 0, None
    oldest, newest = bounds
    if f.until is not None:
        newest = min(newest, f.until)
    window, prev, until, n = SEARCH_WINDOW, timedelta(0), f.until, 0
    while True:
        since = newest - window
        if f.since is not None:
            since = max(since, f.since)
        t0 = time.monotonic()
        n += count_invocations(cur, replace(f, since=since, until=until), exclude_ids)
        if since <= oldest or (f.since and since <= f.since):
            return n, None
        grow = _growth(t0, window, prev, deadline)
        if grow is None:
            return n, since
        until, prev = since, window
        window *= grow


def count_invocations(
    cur: Cursor, f: InvocationFilter, exclude_ids: list[str] | None = None
) -> int:
    """How many stored invocations match (see :func:`list_invocations`)."""
    conds, params = _where(f, exclude_ids or [])
    sql = "SELECT count(*) FROM invocations" + (" WHERE " + " AND ".join(conds) if conds else "")
    row = _one(cur, sql, params)
    return int(row[0]) if row else 0


def status_counts(cur: Cursor) -> dict[str, int]:
    """Stored invocations per stored status."""
    return dict(cur.execute("SELECT status, count(*) FROM invocations GROUP BY status").fetchall())


def journal_timed(
    cur: Cursor, invocation_id: str
) -> list[tuple[JournalEntry, datetime, datetime | None]]:
    """An invocation's journal with each entry's creation and completion times."""
    rows = cur.execute(
        "SELECT idx, kind, name, payload, result, failure_code, failure_message, completed, "
        "created_at, completed_at FROM journal WHERE invocation_id = ? ORDER BY idx",
        [invocation_id],
    ).fetchall()
    return [
        (
            JournalEntry(
                i, EntryKind(k), n, p, r, Failure(fc, fm) if fc is not None else None, bool(c)
            ),
            ca,
            da,
        )
        for i, k, n, p, r, fc, fm, c, ca, da in rows
    ]


def attempts(cur: Cursor, invocation_id: str) -> list[dict[str, Any]]:
    """The attempts of an invocation that ended in a failure, oldest first."""
    rows = _unless_old(
        cur,
        "SELECT attempt, started_at, ended_at, error, location, stack, outcome FROM attempts "
        "WHERE invocation_id = ? ORDER BY ended_at, attempt",
        [invocation_id],
    )
    names = ("attempt", "started_at", "ended_at", "error", "location", "stack", "outcome")
    return [dict(zip(names, r, strict=True)) for r in rows]


def logs(cur: Cursor, invocation_id: str, limit: int = 2000) -> list[dict[str, Any]]:
    """What an invocation's handler printed or logged, in order (at most ``limit``)."""
    rows = _unless_old(
        cur,
        "SELECT logged_at, attempt, stream, level, message FROM logs "
        "WHERE invocation_id = ? ORDER BY seq LIMIT ?",
        [invocation_id, limit],
    )
    names = ("at", "attempt", "stream", "level", "message")
    return [dict(zip(names, r, strict=True)) for r in rows]


def origin(cur: Cursor, invocation_id: str) -> dict[str, Any] | None:
    """Where a pulled copy came from (``durable pull``); None for a local invocation."""
    rows = _unless_old(
        cur,
        "SELECT cluster, remote_id, remote_status, pulled_at, state FROM origins "
        "WHERE invocation_id = ?",
        [invocation_id],
    )
    if not rows:
        return None
    names = ("cluster", "remote_id", "remote_status", "pulled_at", "state")
    return dict(zip(names, rows[0], strict=True))


def _unless_old(cur: Cursor, sql: str, params: list[Any]) -> list[tuple]:
    """Rows of ``sql``, or none from a store older than its table (opened read-only by
    the CLI, so not migrated)."""
    try:
        return cur.execute(sql, params).fetchall()
    except duckdb.CatalogException:
        return []


def incomplete_entries(cur: Cursor, invocation_ids: list[str]) -> dict[str, list[JournalEntry]]:
    """The entries not yet completed (what they wait on) of some invocations."""
    if not invocation_ids:
        return {}
    rows = cur.execute(
        "SELECT invocation_id, idx, kind, name, payload FROM journal "
        "WHERE invocation_id IN (SELECT unnest(?)) AND NOT completed "
        "AND kind NOT IN ('input', 'output') ORDER BY invocation_id, idx",
        [invocation_ids],
    ).fetchall()
    out: dict[str, list[JournalEntry]] = {}
    for inv_id, i, k, n, p in rows:
        out.setdefault(inv_id, []).append(JournalEntry(i, EntryKind(k), n, p))
    return out


def entry_time(cur: Cursor, invocation_id: str, entry_index: int) -> datetime | None:
    """When an entry was appended, or None if the invocation has no such entry."""
    row = _one(
        cur,
        "SELECT created_at FROM journal WHERE invocation_id = ? AND idx = ?",
        [invocation_id, entry_index],
    )
    return row[0] if row else None


def state_changes(
    cur: Cursor, service: str, key: str, since: datetime, until: datetime
) -> list[tuple[str | None, str, str | None, str | None, int | None, datetime]]:
    """History rows of one key changed in (since, until], oldest first:
    (name, op, value, invocation id, entry index, changed at)."""
    return cur.execute(
        "SELECT name, op, value, invocation_id, entry_index, changed_at FROM state_history "
        "WHERE service = ? AND key = ? AND changed_at > ? AND changed_at <= ? "
        "ORDER BY changed_at, rowid",
        [service, key, since, until],
    ).fetchall()


def state_keys(cur: Cursor, service: str) -> list[tuple[str, int]]:
    """The keys of an object or workflow that hold state, with their number of entries."""
    return cur.execute(
        "SELECT key, count(*) FROM state WHERE service = ? GROUP BY key ORDER BY key", [service]
    ).fetchall()


def pending_awakeables(
    cur: Cursor, limit: int = 1000
) -> list[tuple[str, str, int, datetime, str, str, str | None, str]]:
    """Awakeables not yet completed whose invocation is not finished: (awakeable id,
    invocation id, entry index, created at, service, handler, key, stored status)."""
    return cur.execute(
        "SELECT a.id, a.invocation_id, a.entry_index, a.created_at, i.service, i.handler, "
        "i.key, i.status FROM awakeables a "
        "JOIN journal j ON j.invocation_id = a.invocation_id AND j.idx = a.entry_index "
        "JOIN invocations i ON i.id = a.invocation_id "
        f"WHERE NOT j.completed AND i.status NOT IN ({TERMINAL_SQL}) "
        "ORDER BY a.created_at LIMIT ?",
        [limit],
    ).fetchall()


def pending_promises(
    cur: Cursor, limit: int = 1000
) -> list[tuple[str, str, str, str, int, datetime, str, str]]:
    """Workflow promises awaited and not completed: (service, key, name, invocation id,
    entry index, since, handler, stored status)."""
    return cur.execute(
        "SELECT i.service, i.key, j.name, j.invocation_id, j.idx, j.created_at, i.handler, "
        "i.status FROM journal j JOIN invocations i ON i.id = j.invocation_id "
        "WHERE j.kind = 'get_promise' AND NOT j.completed "
        f"AND i.status NOT IN ({TERMINAL_SQL}) "
        "ORDER BY j.created_at LIMIT ?",
        [limit],
    ).fetchall()


def table_names(cur: Cursor) -> list[str]:
    """The store's tables and views (what ``durable export`` writes)."""
    rows = cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' UNION ALL SELECT view_name FROM duckdb_views() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal "
        "ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def woken_suspended(cur: Cursor) -> list[str]:
    """Suspended invocations whose awaited entry is already completed (a completion
    committed just before the runtime stopped, before it could wake them)."""
    # the suspended rows first (few), their awaited indexes unnested, then only those
    # journal entries: no JSON extraction over the whole history, no join with every entry
    rows = cur.execute(
        "WITH w AS (SELECT id, unnest(CAST(coalesce(attrs->>'waiting_on', '[]') AS INTEGER[])) "
        "AS idx FROM invocations WHERE status = 'suspended') "
        "SELECT DISTINCT w.id FROM w JOIN journal j ON j.invocation_id = w.id AND j.idx = w.idx "
        "WHERE j.completed"
    ).fetchall()
    return [r[0] for r in rows]


def pending_waits(cur: Cursor) -> list[tuple[str, int, str, str | None, str | None]]:
    """Incomplete ``call`` and ``attach_invocation`` entries of live invocations:
    (invocation id, index, kind, name, payload)."""
    rows = cur.execute(
        "SELECT j.invocation_id, j.idx, j.kind, j.name, j.payload FROM journal j "
        "JOIN invocations i ON i.id = j.invocation_id "
        "WHERE j.kind IN ('call', 'attach_invocation') AND NOT j.completed "
        f"AND i.status NOT IN ({TERMINAL_SQL})"
    ).fetchall()
    return [(r[0], int(r[1]), r[2], r[3], r[4]) for r in rows]


def outcomes(
    cur: Cursor, invocation_ids: list[str]
) -> dict[str, tuple[str, str | None, int | None, str | None, Failure | None]]:
    """For each existing id: (status, parent id, parent entry, output, failure)."""
    if not invocation_ids:
        return {}
    rows = cur.execute(
        "SELECT id, status, parent_id, parent_entry, output, failure_code, failure_message "
        "FROM invocation_details WHERE id IN (SELECT unnest(?))",
        [invocation_ids],
    ).fetchall()
    return {
        r[0]: (r[1], r[2], r[3], r[4], Failure(r[5], r[6] or "") if r[5] is not None else None)
        for r in rows
    }


def entry_status(cur: Cursor, invocation_id: str, index: int) -> tuple[bool, str] | None:
    """(entry completed, invocation status) of one journal entry, or None."""
    row = _one(
        cur,
        "SELECT j.completed, i.status FROM journal j JOIN invocations i ON i.id = j.invocation_id "
        "WHERE j.invocation_id = ? AND j.idx = ?",
        [invocation_id, index],
    )
    return (bool(row[0]), row[1]) if row else None


# ---------------------------------------------------------------------------------------
# Dashboard reads.


def status_counts_except(
    cur: Cursor, exclude_ids: list[str], f: InvocationFilter | None = None
) -> dict[str, int]:
    """Stored invocations per stored status, leaving out some ids (those whose live
    status the engine holds in memory: the caller counts them); with ``f``, only those
    its other fields match (its statuses are ignored: one count per status; so is a text
    search, which would scan every row's JSON at each poll: the chips then count the
    other filters)."""
    if f is not None:
        f = replace(f, statuses=(), text=None if is_text_search(f) else f.text)
    conds, params = _where(f, []) if f else ([], [])
    if not exclude_ids and not conds:
        return status_counts(cur)
    if exclude_ids:
        conds.append("id NOT IN (SELECT unnest(?))")
        params.append(exclude_ids)
    return dict(
        cur.execute(
            f"SELECT status, count(*) FROM invocations WHERE {' AND '.join(conds)} GROUP BY status",
            params,
        ).fetchall()
    )


def journal_entries(
    cur: Cursor, keys: list[tuple[str, int]]
) -> dict[tuple[str, int], JournalEntry]:
    """Some journal entries by (invocation id, index)."""
    if not keys:
        return {}
    rows = cur.execute(
        "SELECT j.invocation_id, j.idx, j.kind, j.name, j.payload, j.result, j.failure_code, "
        "j.failure_message, j.completed FROM journal j "
        "JOIN (SELECT unnest(?) AS inv, unnest(?) AS idx) k "
        "ON j.invocation_id = k.inv AND j.idx = k.idx",
        [[k[0] for k in keys], [k[1] for k in keys]],
    ).fetchall()
    return {
        (inv, i): JournalEntry(
            i, EntryKind(k), n, p, r, Failure(fc, fm) if fc is not None else None, bool(c)
        )
        for inv, i, k, n, p, r, fc, fm, c in rows
    }
