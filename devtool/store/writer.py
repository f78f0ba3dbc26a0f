"""The one writer: a thread that commits queued operations in groups.

Callers submit a list of :mod:`ops <durable.devtool.store.ops>` and get a future that
resolves once the list is committed. Everything queued while a commit runs goes into the
next group (group commit), so throughput grows with concurrency.

A group is committed when it is in the :mod:`operation log <.oplog>` (append +
``fdatasync``). The same thread then writes the logged groups into DuckDB, many in one
transaction, when they are 100 ms old, when 4,000 operations wait, before any read
(``flush``), and on close; the transaction also records the last group it holds, so a
crash between the DuckDB commit and emptying the log applies nothing twice. Rows are
written with DuckDB appenders (insert, update, upsert, delete actions), never with
per-row ``executemany``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import duckdb

from .oplog import OpLog, encode_ops
from .ops import (
    AppendEntry,
    ClearAllState,
    CompleteEntry,
    DeleteTimer,
    Op,
    PurgeInvocation,
    PurgeWorkflow,
    PutAwakeable,
    PutIdempotency,
    PutInvocation,
    PutPromise,
    PutTimer,
    SetState,
    row_to_db,
    row_update_to_db,
)
from .statecache import StateChanges

__all__ = ["Writer", "state_changes"]

log = logging.getLogger("durable.store")

_STOP = object()
_FLUSH = object()
_ON_APPLIED = object()
# how long logged groups may wait for DuckDB, and how many operations: bigger transactions
# cost less per row, but the writer logs nothing while one commits
_APPLY_AFTER_S = 0.1
_APPLY_OPS = 4000
# checkpoint soon after a burst: the rows leave memory (10,000 suspended invocations: +19 MiB
# instead of +24 MiB once the RSS settles), and the WAL stays short
_IDLE_CHECKPOINT_S = 1.0


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


class Writer:
    """Owns the write connection, the operation log and the writer thread."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        log_file: str | None,
        on_done: Callable[[list[tuple[Any, BaseException | None]]], None],
        on_state_commit: Callable[[StateChanges], None] | None = None,
    ) -> None:
        self._con = con
        self._on_done = on_done
        self._persistent = log_file is not None
        self._on_state_commit = on_state_commit  # told each group's state changes
        rows = con.execute("SELECT coalesce(max(seq), 0) FROM state_history").fetchall()
        self._history_seq = int(rows[0][0])  # state_history.seq: the order of changes
        rows = con.execute("SELECT seq FROM oplog_applied").fetchall()
        self._seq = int(rows[0][0])  # of the last logged group
        self._pending: list[tuple[int, list[Op]]] = []  # logged, not yet in DuckDB
        self._pending_ops = 0
        self._pending_since = 0.0
        self._applied_waiters: list[Callable[[], None]] = []
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="durable-writer", daemon=True)
        self.batches = 0  # groups logged
        self.ops_written = 0
        self.recovered = 0  # groups found in the log at start and applied
        self._dirty = False
        self._ap = {
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
        }
        self._log = OpLog(log_file) if log_file is not None else None
        if self._log is not None and self._log.size:
            self._recover()
        self._thread.start()

    def _recover(self) -> None:
        """Apply the groups a crash left in the log but not in DuckDB."""
        assert self._log is not None
        applied = self._seq
        for seq, ops in self._log.records():
            if seq > applied:
                self._pending.append((seq, ops))
                self._seq = seq
        self.recovered = len(self._pending)
        if self._pending:
            log.info("applying %d committed write groups from %s", self.recovered, self._log.path)
        self._apply_pending()
        self._log.reset()

    def submit(self, ops: list[Op], token: Any = None) -> None:
        """Queue ``ops``; once they are durable ``on_done`` receives ``(token, error)``."""
        self._queue.put((ops, token))

    def flush(self, callback: Callable[[], None]) -> None:
        """Put every durable write into DuckDB, then call ``callback`` (writer thread)."""
        self._queue.put((_FLUSH, callback))

    def on_applied(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (writer thread) once every write committed so far is in DuckDB,
        without hurrying that along."""
        self._queue.put((_ON_APPLIED, callback))

    @property
    def unapplied(self) -> bool:
        """Whether some durable writes are not in DuckDB yet (readers flush first)."""
        return bool(self._pending)

    def close(self) -> None:
        """Commit what is queued, apply it, checkpoint, and stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    # -- the thread
    def _loop(self) -> None:
        while True:
            if self._pending:
                timeout = max(0.0, self._pending_since + _APPLY_AFTER_S - time.monotonic())
            else:
                timeout = _IDLE_CHECKPOINT_S
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                if not self._pending:
                    self._checkpoint()
                    continue
                item = None  # the logged groups are due: apply them below
            batch = []
            flushes = []
            stop = False
            while item is not None:
                if item is _STOP:
                    stop = True
                    break
                if item[0] is _FLUSH:
                    flushes.append(item[1])
                elif item[0] is _ON_APPLIED:
                    self._applied_waiters.append(item[1])
                else:
                    batch.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit_batch(batch)
            if self._pending and (
                flushes
                or stop
                or self._pending_ops >= _APPLY_OPS
                or time.monotonic() - self._pending_since >= _APPLY_AFTER_S
            ):
                self._apply_pending()
            if not self._pending:
                flushes += self._applied_waiters
                self._applied_waiters = []
            self._call(flushes)
            if stop:
                self._checkpoint()
                if self._log is not None:
                    self._log.close()
                return

    @staticmethod
    def _call(callbacks: list[Callable[[], None]]) -> None:
        for cb in callbacks:
            try:
                cb()
            except Exception:
                log.exception("writer callback failed")

    def _checkpoint(self) -> None:
        if self._dirty and self._persistent:
            try:
                self._con.execute("CHECKPOINT")
                self._dirty = False
            except duckdb.Error as e:  # a checkpoint can wait; the WAL is durable
                log.warning("checkpoint failed: %s", e)

    def _commit_batch(self, batch: list) -> None:
        """Log one group (append + fdatasync), then tell its submitters."""
        ops = [op for item in batch for op in item[0]]
        error: BaseException | None = None
        if ops:
            try:
                payload = encode_ops(ops)
                if self._log is not None:
                    self._log.append(self._seq + 1, payload)
                self._seq += 1
                if not self._pending:
                    self._pending_since = time.monotonic()
                self._pending.append((self._seq, ops))
                self._pending_ops += len(ops)
                self.batches += 1
                self.ops_written += len(ops)
            except Exception as e:
                log.error("logging %d writes failed: %s", len(ops), e)
                error = e
            if error is None and self._on_state_commit is not None:
                changes = state_changes(ops)
                if changes:
                    self._on_state_commit(changes)
        try:
            self._on_done([(token, error) for _ops, token in batch])  # one wake-up per batch
        except Exception:
            log.exception("writer completion hook failed")

    def _apply_pending(self) -> None:
        """Write the logged groups into DuckDB and empty the log.

        Groups are coalesced into one transaction, except that a purge ends one: rows
        written after a purge may reuse the purged ids (a workflow run again).
        """
        segment: list[tuple[int, list[Op]]] = []
        for group in self._pending:
            segment.append(group)
            if any(isinstance(op, (PurgeInvocation, PurgeWorkflow)) for op in group[1]):
                self._apply_segment(segment)
                segment = []
        if segment:
            self._apply_segment(segment)
        self._pending = []
        self._pending_ops = 0
        if self._log is not None:
            try:
                self._log.reset()
            except OSError as e:  # the log grows until the next reset; nothing is lost
                log.warning("emptying %s failed: %s", self._log.path, e)

    def _apply_segment(self, segment: list[tuple[int, list[Op]]]) -> None:
        try:
            self._apply([op for _seq, ops in segment for op in ops], segment[-1][0])
            return
        except Exception as e:
            log.error("applying %d write groups failed (%s); retrying one by one", len(segment), e)
        for seq, ops in segment:
            try:
                self._apply(ops, seq)
            except Exception as e:
                # Acknowledged, but DuckDB refuses it: a bug. Say so loudly and go on, or
                # every later write would stay out of DuckDB.
                log.error("write group %d could not be applied and is dropped: %s: %r", seq, e, ops)
                try:
                    self._apply([], seq)
                except Exception:
                    log.exception("recording the applied position failed")

    def _next_history_seq(self) -> int:
        self._history_seq += 1
        return self._history_seq

    def _apply(self, ops: list[Op], seq: int) -> None:
        """One DuckDB transaction: ``ops`` coalesced per row, and the log position ``seq``."""
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
                        self._next_history_seq(),
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
                        self._next_history_seq(),
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
        state = state_changes(ops)  # a purged workflow's state is cleared too
        con = self._con
        ap = self._ap
        con.execute("BEGIN")
        try:
            new_rows = [row_to_db(r) for r, new in inv.values() if new]
            if new_rows:
                ap["inv_insert"].append_rows(new_rows)
                ap["inv_insert"].flush()
            upd = [row_update_to_db(r) for r, new in inv.values() if not new]
            if upd:
                ap["inv_update"].append_rows(upd)
                ap["inv_update"].flush()
            if entries:
                ap["journal_insert"].append_rows(list(entries.values()))
                ap["journal_insert"].flush()
            if completions:
                ap["journal_update"].append_rows(list(completions.values()))
                ap["journal_update"].flush()
            if state:
                ups, dels = [], []
                for (service, key), (clear_all, names) in state.items():
                    if clear_all:
                        con.execute(
                            "DELETE FROM state WHERE service = ? AND key = ?", [service, key]
                        )
                    for name, value in names.items():
                        if value is None:
                            if not clear_all:
                                dels.append((service, key, name))
                        else:
                            ups.append((service, key, name, value))
                if dels:
                    ap["state_delete"].append_rows(dels)
                    ap["state_delete"].flush()
                if ups:
                    ap["state_upsert"].append_rows(ups)
                    ap["state_upsert"].flush()
            if history:
                ap["history"].append_rows(history)
                ap["history"].flush()
            if timer_puts or timer_dels:
                puts = [(i, x, at) for (i, x), at in timer_puts.items()]
                dels = list(timer_dels)
                if dels:
                    ap["timer_delete"].append_rows(dels)
                    ap["timer_delete"].flush()
                if puts:
                    ap["timer_insert"].append_rows(puts)
                    ap["timer_insert"].flush()
            if awakeables:
                ap["awakeable"].append_rows(awakeables)
                ap["awakeable"].flush()
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
            if idem:
                ap["idempotency"].append_rows(idem)
                ap["idempotency"].flush()
            for service, key in workflows:
                con.execute("DELETE FROM promises WHERE service = ? AND key = ?", [service, key])
                con.execute(
                    "DELETE FROM state_history WHERE service = ? AND key = ?", [service, key]
                )
                rows = con.execute(
                    "SELECT id FROM invocations WHERE service = ? AND key = ? "
                    "AND status IN ('completed', 'killed', 'cancelled')",
                    [service, key],
                ).fetchall()
                purges.extend(r[0] for r in rows)
            for inv_id in purges:
                con.execute("DELETE FROM journal WHERE invocation_id = ?", [inv_id])
                con.execute("DELETE FROM timers WHERE invocation_id = ?", [inv_id])
                con.execute("DELETE FROM awakeables WHERE invocation_id = ?", [inv_id])
                con.execute("DELETE FROM idempotency WHERE invocation_id = ?", [inv_id])
                con.execute("DELETE FROM invocations WHERE id = ?", [inv_id])
            con.execute("UPDATE oplog_applied SET seq = ?", [seq])
            con.execute("COMMIT")
            self._dirty = True
        except BaseException:
            for a in ap.values():
                a.clear()
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
