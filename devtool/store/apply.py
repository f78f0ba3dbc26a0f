"""How the writer puts operations into DuckDB: one transaction per call, rows coalesced.

Rows are written with DuckDB appenders (insert, update, upsert, delete actions), never
with per-row ``executemany``. The writer (:mod:`.writer`) decides what goes into each
transaction; :mod:`.faults` what happens when DuckDB refuses one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from .ops import (
    TERMINAL_SQL,
    AppendEntry,
    AppendLogs,
    ClearAllState,
    CompleteEntry,
    DeleteTimer,
    Op,
    PurgeInvocation,
    PurgeWorkflow,
    PutAttempt,
    PutAwakeable,
    PutIdempotency,
    PutInvocation,
    PutOrigin,
    PutPromise,
    PutTimer,
    SetState,
    changed_row,
    row_to_db,
    row_update_to_db,
)
from .statecache import StateChanges

__all__ = ["apply_ops", "make_appenders", "state_changes", "Refusal", "record_refusal"]


def state_changes(ops: list[Op]) -> StateChanges:
    """What ``ops`` change in the K/V state, per key (for the committed-state cache)."""
    state: dict[tuple[str, str], tuple[bool, dict[str, str | None]]] = {}
    for op in ops:
        if isinstance(op, SetState):
            k = (op.service, op.key)
            if k not in state:
                state[k] = (False, {})
            state[k][1][op.name] = op.value
        elif isinstance(op, (ClearAllState, PurgeWorkflow)):
            state[(op.service, op.key)] = (True, {})
    return state


def make_appenders(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The appenders :func:`apply_ops` writes with (one set per connection)."""
    return {
        "inv_insert": con.appender("invocations"),
        "inv_update": con.appender(
            "invocations",
            columns=["id", "status", "modified_at", "attrs"],
            action="update",
            key=["id"],
        ),
        "journal_insert": con.appender("journal"),
        "journal_update": con.appender(
            "journal",
            columns=[
                "invocation_id",
                "idx",
                "result",
                "failure_code",
                "failure_message",
                "completed",
                "completed_at",
            ],
            action="update",
            key=["invocation_id", "idx"],
        ),
        "state_upsert": con.appender("state", action="upsert"),
        "state_delete": con.appender("state", action="delete", key=["service", "key", "name"]),
        "history": con.appender("state_history"),
        "timer_insert": con.appender("timers"),
        "timer_delete": con.appender(
            "timers", action="delete", key=["invocation_id", "entry_index"]
        ),
        "awakeable": con.appender("awakeables"),
        "idempotency": con.appender("idempotency"),
        "attempts": con.appender("attempts"),
        "logs": con.appender("logs"),
    }


@dataclass(frozen=True)
class Refusal:
    """One acknowledged operation DuckDB will not take (kept in ``refused_writes``)."""

    seq: int  # the log group
    position: int  # the operation's place in the group
    invocation_id: str | None
    entry_index: int | None
    operation: str  # the op's class name
    error: str
    detail: str  # the op, as text (ascii: it may hold what DuckDB refused)
    at: datetime

    def describe(self) -> str:
        who = f"invocation {self.invocation_id}" if self.invocation_id else "no invocation"
        entry = f" entry {self.entry_index}" if self.entry_index is not None else ""
        return f"{who}{entry}: {self.operation} refused by the store: {self.error}"


def record_refusal(con: duckdb.DuckDBPyConnection, r: Refusal) -> None:
    """Insert ``r`` and pause its invocation with an error that names the entry."""
    con.execute(
        "INSERT INTO refused_writes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [r.seq, r.position, r.invocation_id, r.entry_index, r.operation, r.error, r.detail, r.at],
    )
    if r.invocation_id is not None:
        patch = json.dumps({"last_error": r.describe() + " (see `durable store check`)"})
        con.execute(
            "UPDATE invocations SET status = 'paused', attrs = json_merge_patch(attrs, ?) "
            f"WHERE id = ? AND status NOT IN ({TERMINAL_SQL})",
            [patch, r.invocation_id],
        )


class _Trial(Exception):
    """Raised inside a trial transaction to roll it back."""


def _put(ap: dict[str, Any], table: str, rows: list[Any]) -> None:
    """Append ``rows`` (if any) through the appender named ``table``, flushed."""
    if rows:
        ap[table].append_rows(rows)
        ap[table].flush()


def apply_ops(
    con: duckdb.DuckDBPyConnection,
    ap: dict[str, Any],
    ops: list[Op],
    seq: int,
    next_history_seq: Callable[[], int],
    *,
    refused: list[Refusal] | tuple = (),
    refused_ids: dict[str, str] | None = None,
    commit: bool = True,
) -> None:
    """One DuckDB transaction: ``ops`` coalesced per row, and the log position ``seq``.

    ``refused``: operations of this group that DuckDB will not take, recorded in the
    ``refused_writes`` table (and their invocations paused) in the same transaction.
    ``refused_ids``: invocations paused so in this process, whose later rows keep the
    error. ``commit=False`` rolls back (a trial: does DuckDB take these ops?).
    """
    inv: dict[str, list] = {}  # id -> [row, new]
    entries: dict[tuple[str, int], list] = {}
    completions: dict[tuple[str, int], list] = {}
    history: list[tuple] = []
    timer_puts: dict[tuple[str, int], Any] = {}
    timer_dels: set[tuple[str, int]] = set()
    awakeables: list[tuple] = []
    promises: list[PutPromise] = []
    idem: list[tuple] = []
    purges: list[str] = []
    workflows: list[tuple[str, str]] = []
    attempt_rows: list[tuple] = []
    log_rows: list[tuple] = []
    origins: list[PutOrigin] = []
    for op in ops:
        if isinstance(op, PutInvocation):
            cur = inv.get(op.row.id)
            inv[op.row.id] = [op.row, op.new or (cur is not None and cur[1])]
        elif isinstance(op, AppendEntry):
            e = op.entry
            f = e.failure
            entries[(op.invocation_id, e.index)] = [
                op.invocation_id,
                e.index,
                e.kind.value,
                e.name,
                e.payload,
                e.result,
                f.code if f else None,
                f.message if f else None,
                e.completed,
                op.at,
                op.at if e.completed else None,
            ]
        elif isinstance(op, CompleteEntry):
            k = (op.invocation_id, op.index)
            f = op.failure
            if k in entries:
                row = entries[k]
                row[5], row[6], row[7], row[8], row[10] = (
                    op.result,
                    f.code if f else None,
                    f.message if f else None,
                    True,
                    op.at,
                )
            else:
                completions[k] = [
                    op.invocation_id,
                    op.index,
                    op.result,
                    f.code if f else None,
                    f.message if f else None,
                    True,
                    op.at,
                ]
        elif isinstance(op, SetState):
            history.append(
                (
                    op.service,
                    op.key,
                    op.name,
                    "set" if op.value is not None else "clear",
                    op.value,
                    op.invocation_id,
                    op.index,
                    op.at,
                    next_history_seq(),
                )
            )
        elif isinstance(op, ClearAllState):
            history.append(
                (
                    op.service,
                    op.key,
                    None,
                    "clear_all",
                    None,
                    op.invocation_id,
                    op.index,
                    op.at,
                    next_history_seq(),
                )
            )
        elif isinstance(op, PutTimer):
            timer_puts[(op.invocation_id, op.index)] = op.fire_at
        elif isinstance(op, DeleteTimer):
            k = (op.invocation_id, op.index)
            if k in timer_puts:
                del timer_puts[k]  # created and fired in one batch: nothing to insert
            else:
                timer_dels.add(k)
        elif isinstance(op, PutAwakeable):
            awakeables.append((op.id, op.invocation_id, op.index, op.at))
        elif isinstance(op, PutPromise):
            promises.append(op)
        elif isinstance(op, PutIdempotency):
            idem.append((op.scope, op.idempotency_key, op.invocation_id, op.at))
        elif isinstance(op, PurgeInvocation):
            purges.append(op.invocation_id)
        elif isinstance(op, PurgeWorkflow):
            workflows.append((op.service, op.key))
        elif isinstance(op, PutAttempt):
            attempt_rows.append(
                (
                    op.invocation_id,
                    op.attempt,
                    op.started_at,
                    op.ended_at,
                    op.error,
                    op.location,
                    op.stack,
                    op.outcome,
                )
            )
        elif isinstance(op, AppendLogs):
            log_rows.extend(op.rows)
        elif isinstance(op, PutOrigin):
            origins.append(op)
    if refused_ids:
        for inv_id, (row, new) in list(inv.items()):
            if inv_id in refused_ids and row.status == "paused" and not row.last_error:
                inv[inv_id] = [changed_row(row, last_error=refused_ids[inv_id]), new]
    state = state_changes(ops)  # a purged workflow's state is cleared too
    con.execute("BEGIN")
    try:
        new_rows = [row_to_db(r) for r, new in inv.values() if new]
        _put(ap, "inv_insert", new_rows)
        upd = [row_update_to_db(r) for r, new in inv.values() if not new]
        _put(ap, "inv_update", upd)
        _put(ap, "journal_insert", list(entries.values()))
        _put(ap, "journal_update", list(completions.values()))
        if state:
            ups, dels = [], []
            for (service, key), (clear_all, names) in state.items():
                if clear_all:
                    con.execute("DELETE FROM state WHERE service = ? AND key = ?", [service, key])
                for name, value in names.items():
                    if value is None:
                        if not clear_all:
                            dels.append((service, key, name))
                    else:
                        ups.append((service, key, name, value))
            _put(ap, "state_delete", dels)
            _put(ap, "state_upsert", ups)
        _put(ap, "history", history)
        _put(ap, "timer_delete", list(timer_dels))
        _put(ap, "timer_insert", [(i, x, at) for (i, x), at in timer_puts.items()])
        _put(ap, "awakeable", awakeables)
        for p in promises:
            f = p.failure
            con.execute(
                "INSERT OR REPLACE INTO promises VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    p.service,
                    p.key,
                    p.name,
                    p.result,
                    f.code if f else None,
                    f.message if f else None,
                    p.at,
                ],
            )
        _put(ap, "idempotency", idem)
        _put(ap, "attempts", attempt_rows)
        _put(ap, "logs", log_rows)
        for service, key in workflows:
            con.execute("DELETE FROM promises WHERE service = ? AND key = ?", [service, key])
            con.execute("DELETE FROM state_history WHERE service = ? AND key = ?", [service, key])
            rows = con.execute(
                "SELECT id FROM invocations WHERE service = ? AND key = ? "
                f"AND status IN ({TERMINAL_SQL})",
                [service, key],
            ).fetchall()
            purges.extend(r[0] for r in rows)
        for inv_id in purges:
            con.execute("DELETE FROM journal WHERE invocation_id = ?", [inv_id])
            con.execute("DELETE FROM timers WHERE invocation_id = ?", [inv_id])
            con.execute("DELETE FROM awakeables WHERE invocation_id = ?", [inv_id])
            con.execute("DELETE FROM idempotency WHERE invocation_id = ?", [inv_id])
            con.execute("DELETE FROM attempts WHERE invocation_id = ?", [inv_id])
            con.execute("DELETE FROM logs WHERE invocation_id = ?", [inv_id])
            con.execute("DELETE FROM origins WHERE invocation_id = ?", [inv_id])
            con.execute("DELETE FROM invocations WHERE id = ?", [inv_id])
        for o in origins:  # after the purges: a forced pull purges, then puts anew
            con.execute(
                "INSERT OR REPLACE INTO origins VALUES (?, ?, ?, ?, ?, ?)",
                [o.invocation_id, o.cluster, o.remote_id, o.remote_status, o.pulled_at, o.state],
            )
        for r in refused:
            record_refusal(con, r)
        con.execute("UPDATE oplog_applied SET seq = ?", [seq])
        if not commit:
            raise _Trial
        con.execute("COMMIT")
    except BaseException as e:
        for a in ap.values():
            a.clear()
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        if not isinstance(e, _Trial):
            raise
