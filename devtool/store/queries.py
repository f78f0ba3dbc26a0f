"""Read queries over the store, shared by the engine, admin API, dashboard and CLI.

Each function takes a DuckDB cursor and returns plain values or frozen rows; none of
them writes. Callers run them off the event loop (``Store.read``).
"""

from __future__ import annotations

from datetime import datetime

import duckdb
from durable.messages import EntryKind, Failure, JournalEntry

from .ops import INVOCATION_COLUMNS, InvocationRow

__all__ = [
    "invocation",
    "journal",
    "journal_and_order",
    "invocations_with_journals",
    "state",
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
]

Cursor = duckdb.DuckDBPyConnection
_INV_SELECT = "SELECT " + ", ".join(INVOCATION_COLUMNS) + " FROM invocations"
_TERMINAL = ("completed", "killed", "cancelled")


def _one(cur: Cursor, sql: str, params: list) -> tuple | None:
    # fetchall, never fetchone: an unfinished result keeps the cursor's transaction open
    rows = cur.execute(sql, params).fetchall()
    return rows[0] if rows else None


def _inv(row: tuple | None) -> InvocationRow | None:
    return InvocationRow(*row) if row else None


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
        r[0]: (InvocationRow(*r), [], []) for r in rows
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


def active_invocations(cur: Cursor) -> list[InvocationRow]:
    """Every invocation not yet in a terminal status, oldest first."""
    rows = cur.execute(
        _INV_SELECT + " WHERE status NOT IN ('completed', 'killed', 'cancelled') ORDER BY id"
    ).fetchall()
    return [InvocationRow(*r) for r in rows]


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
        "AND i.key = ? AND i.status NOT IN ('completed', 'killed', 'cancelled')",
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


def woken_suspended(cur: Cursor) -> list[str]:
    """Suspended invocations whose awaited entry is already completed (a completion
    committed just before the runtime stopped, before it could wake them)."""
    rows = cur.execute(
        "SELECT DISTINCT i.id FROM invocations i JOIN journal j ON j.invocation_id = i.id "
        "WHERE i.status = 'suspended' AND j.completed "
        "AND list_contains(CAST(coalesce(i.waiting_on, '[]') AS INTEGER[]), j.idx)"
    ).fetchall()
    return [r[0] for r in rows]


def pending_waits(cur: Cursor) -> list[tuple[str, int, str, str | None, str | None]]:
    """Incomplete ``call`` and ``attach_invocation`` entries of live invocations:
    (invocation id, index, kind, name, payload)."""
    rows = cur.execute(
        "SELECT j.invocation_id, j.idx, j.kind, j.name, j.payload FROM journal j "
        "JOIN invocations i ON i.id = j.invocation_id "
        "WHERE j.kind IN ('call', 'attach_invocation') AND NOT j.completed "
        "AND i.status NOT IN ('completed', 'killed', 'cancelled')"
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
        "FROM invocations WHERE id IN (SELECT unnest(?))",
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
