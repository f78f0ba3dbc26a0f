"""Read queries over the store, shared by the engine, admin API, dashboard and CLI.

Each function takes a DuckDB cursor and returns plain values or frozen rows; none of
them writes. Callers run them off the event loop (``Store.read``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
from durable.messages import EntryKind, Failure, JournalEntry

from .ops import DB_COLUMNS, InvocationRow, row_from_db

__all__ = [
    "invocation",
    "journal",
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
    "Cursor",
]

Cursor = duckdb.DuckDBPyConnection
_INV_SELECT = "SELECT " + ", ".join(DB_COLUMNS) + " FROM invocations"
_TERMINAL = ("completed", "killed", "cancelled")


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
    """Ids (keys) of a workflow whose main run finished before ``before``."""
    rows = cur.execute(
        "SELECT key FROM invocations WHERE service = ? AND handler = ? "
        "AND status IN ('completed', 'killed', 'cancelled') AND modified_at < ?",
        [service, handler, before],
    ).fetchall()
    return [r[0] for r in rows]


def active_invocations(cur: Cursor) -> list[InvocationRow]:
    """Every invocation not yet in a terminal status, oldest first."""
    rows = cur.execute(
        _INV_SELECT + " WHERE status NOT IN ('completed', 'killed', 'cancelled') ORDER BY id"
    ).fetchall()
    return [row_from_db(r) for r in rows]


def pending_timers(cur: Cursor) -> list[tuple[str, int, datetime]]:
    """Timers not yet fired: (invocation id, entry index, fire time)."""
    return cur.execute("SELECT invocation_id, entry_index, fire_at FROM timers").fetchall()


def awakeable(cur: Cursor, awakeable_id: str) -> tuple[str, int, bool] | None:
    """(invocation id, entry index, completed) of an awakeable, or None."""
    row = _one(
        cur,
        "SELECT a.invocation_id, a.entry_index, coalesce(j.completed, false) FROM awakeables a "
        "LEFT JOIN journal j ON j.invocation_id = a.invocation_id AND j.idx = a.entry_index "
        "WHERE a.id = ?",
        [awakeable_id],
    )
    return (row[0], int(row[1]), bool(row[2])) if row else None


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
