"""The one writer: a thread that commits queued operations in groups.

Callers submit a list of :mod:`ops <durable.devtool.store.ops>` and get a future that
resolves once the list is committed. Everything queued while a commit runs goes into the
next group (group commit), so throughput grows with concurrency.

A group is committed when it is in the :mod:`operation log <.oplog>` (append +
``fdatasync``). The same thread then writes the logged groups into DuckDB
(:mod:`.apply`), many in one transaction, when they are 100 ms old, when 4,000
operations wait, before any read (``flush``), and on close; the transaction also records
the last group it holds, so a crash between the DuckDB commit and emptying the log
applies nothing twice.

Nothing acknowledged is dropped (:mod:`.faults`): an operation DuckDB refuses is set
aside in ``refused_writes`` and the rest of its group applied; a failure of the store
itself (disk full, I/O error) leaves every group in the log, makes the writer
*degraded* (``degraded`` holds the reason) and retries with backoff until it clears.
A group whose append fails is not acknowledged: it waits, first in line, for the next try.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import duckdb

from ..errors import StoreDamagedError, StoreDegraded, StoreOpenError
from .apply import Refusal, apply_ops, make_appenders, state_changes
from .faults import Persistent, persistent, reason, sift
from .oplog import OpLog, encode_ops, scan
from .ops import Op, PurgeInvocation, PurgeWorkflow
from .recovery import damage_message, findings
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
# and under steady load once the WAL passes this: DuckDB replays the whole WAL at open
# (1 MiB ~85 ms CPU, 4 MiB ~210 ms), so a kill -9 under load must not leave 16 MiB (its
# default) of it; each checkpoint stalls the group commits behind it, so not every MiB
_WAL_CHECKPOINT_BYTES = 4 << 20
# degraded: the first retry, and the longest wait between two
_RETRY_FIRST_S = 0.25
_RETRY_MAX_S = 2.0


class Writer:
    """Owns the write connection, the operation log and the writer thread.

    ``on_event(kind, text, invocation_id)`` (writer thread) hears ``degraded``,
    ``resumed`` and ``refused``; ``reopen()`` gives a new connection when DuckDB invalidated this one.
    ``repair``: recover a damaged log by losing only its damaged records.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        log_file: str | None,
        on_done: Callable[[list[tuple[Any, BaseException | None]]], None],
        on_state_commit: Callable[[StateChanges], None] | None = None,
        *,
        store_path: str = ":memory:",
        on_event: Callable[[str, str, str | None], None] | None = None,
        reopen: Callable[[], duckdb.DuckDBPyConnection] | None = None,
        repair: bool = False,
    ) -> None:
        self._con = con
        self._on_done = on_done
        self._persistent = log_file is not None
        self._on_state_commit = on_state_commit  # told each group's state changes
        self._store_path = store_path
        self._on_event = on_event
        self._reopen = reopen
        rows = con.execute("SELECT coalesce(max(seq), 0) FROM state_history").fetchall()
        self._history_seq = int(rows[0][0])  # state_history.seq: the order of changes
        rows = con.execute("SELECT seq FROM oplog_applied").fetchall()
        self._seq = int(rows[0][0])  # of the last logged group
        self._applied_seq = self._seq  # of the last group DuckDB holds
        self._pending: list[tuple[int, list[Op]]] = []  # logged, not yet in DuckDB
        self._pending_ops = 0
        self._pending_since = 0.0
        self._applied_waiters: list[Callable[[], None]] = []
        self._unlogged: list[Any] = []  # submissions whose append failed: retried first
        self.degraded: str | None = None  # why the store takes no new work, when it does not
        self._retry_at = 0.0
        self._backoff = _RETRY_FIRST_S
        self._needs_reopen = False
        self._refused_ids: dict[str, str] = {}  # invocation -> error, paused in this process
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._abandoned = False
        self._thread = threading.Thread(target=self._loop, name="durable-writer", daemon=True)
        self.batches = 0  # groups logged
        self.ops_written = 0
        self.recovered = 0  # groups found in the log at start and applied
        self.refused = 0  # operations set aside in refused_writes
        self._dirty = False
        self._ap = make_appenders(con)
        self._log = OpLog(log_file) if log_file is not None else None
        if self._log is not None and self._log.size:
            try:
                self._recover(repair)
            except BaseException:
                self._log.close()
                raise
        self._thread.start()

    def _recover(self, repair: bool) -> None:
        """Apply the groups a crash left in the log but not in DuckDB."""
        assert self._log is not None
        found = findings(scan(self._log.path), self._applied_seq)
        if found.losses:
            if not repair:
                raise StoreDamagedError(damage_message(found, self._store_path))
            saved = f"{self._log.path}.damaged-{datetime.now(UTC):%Y%m%dT%H%M%S}"
            shutil.copyfile(self._log.path, saved)
            log.warning(
                "repair: %d damaged write groups of %s are lost (a copy of the log is in %s)",
                found.lost_groups,
                self._log.path,
                saved,
            )
        elif found.scan.torn_tail:
            log.warning(
                "cut a torn record (%d bytes at offset %d) off the end of %s: a crash "
                "interrupted its write, so it was never acknowledged",
                found.scan.torn_tail,
                found.scan.torn_offset,
                self._log.path,
            )
        for seq, ops in found.scan.records:
            if seq > self._applied_seq:
                self._pending.append((seq, ops))
            self._seq = max(self._seq, seq)
        self.recovered = len(self._pending)
        if self._pending:
            log.info("applying %d committed write groups from %s", self.recovered, self._log.path)
        failed = self._apply_groups()
        if failed is not None:  # the log stays as it is, for the next start
            raise StoreOpenError(
                f"the store cannot take the {self.recovered} write groups its operation log "
                f"holds: {reason(failed, self._store_path)}"
            )

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

    def abandon(self) -> None:
        """Stop the thread as a ``kill -9`` would (crash tests): what is queued is neither
        logged nor answered, and logged groups DuckDB does not hold stay in the log."""
        self._abandoned = True
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    # -- the thread
    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            if self.degraded is not None:
                timeout = max(0.0, self._retry_at - now)
            elif self._pending:
                timeout = max(0.0, self._pending_since + _APPLY_AFTER_S - now)
            else:
                timeout = _IDLE_CHECKPOINT_S
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                if self.degraded is None and not self._pending:
                    self._checkpoint()
                    continue
                item = None  # the logged groups are due, or a retry: below
            if self._abandoned:
                self._halt()
                return
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
            if self.degraded is not None:
                if stop or time.monotonic() >= self._retry_at:
                    self._retry()
                if batch:
                    self._commit_batch(batch)
            else:
                if batch:
                    self._commit_batch(batch)
                if self._abandoned:  # a crash between the log and DuckDB
                    self._halt()
                    return
                if self._pending and (
                    flushes
                    or stop
                    or self._pending_ops >= _APPLY_OPS
                    or time.monotonic() - self._pending_since >= _APPLY_AFTER_S
                ):
                    self._apply_pending()
                    self._checkpoint_if_wal_large()
            if self._pending:  # degraded: readers wait until DuckDB has every write
                self._applied_waiters += flushes
                flushes = []
            else:
                flushes += self._applied_waiters
                self._applied_waiters = []
            self._call(flushes)
            if stop:
                self._stop()
                return

    def _halt(self) -> None:
        if self._log is not None:
            self._log.close()

    def _stop(self) -> None:
        if self._unlogged:  # never acknowledged: tell their callers
            error = StoreDegraded(
                f"the runtime stopped before these writes were durable: {self.degraded}"
            )
            self._answer(self._unlogged, error)
            self._unlogged = []
        if self.degraded is None:
            self._checkpoint()
        elif self._pending:
            log.warning(
                "stopping with %d write groups in %s that DuckDB does not hold yet: they are "
                "applied at the next start",
                len(self._pending),
                self._log.path if self._log else "memory",
            )
        if self._log is not None:
            self._log.close()

    @staticmethod
    def _call(callbacks: list[Callable[[], None]]) -> None:
        for cb in callbacks:
            try:
                cb()
            except Exception:
                log.exception("writer callback failed")

    def _emit(self, kind: str, text: str, invocation_id: str | None = None) -> None:
        if self._on_event is not None:
            try:
                self._on_event(kind, text, invocation_id)
            except Exception:
                log.exception("store event hook failed")

    def _checkpoint(self) -> None:
        if self._dirty and self._persistent:
            try:
                self._con.execute("CHECKPOINT")
                self._dirty = False
            except duckdb.Error as e:  # a checkpoint can wait; the WAL is durable
                log.warning("checkpoint failed: %s", e)
                if isinstance(e, duckdb.FatalException):  # DuckDB took no more writes
                    self._degrade(e)

    def _checkpoint_if_wal_large(self) -> None:
        if not self._dirty or not self._persistent or self.degraded is not None:
            return
        try:
            size = os.stat(self._store_path + ".wal").st_size
        except OSError:  # no WAL yet, or a path DuckDB does not keep one for
            return
        if size >= _WAL_CHECKPOINT_BYTES:
            self._checkpoint()

    # -- degraded: a persistent failure
    def _degrade(self, e: BaseException) -> None:
        cause = e.cause if isinstance(e, Persistent) else e
        if isinstance(cause, duckdb.FatalException) or "invalidated" in str(cause):
            self._needs_reopen = self._reopen is not None
        text = reason(cause, self._store_path)
        first = self.degraded is None
        if first:
            self._backoff = _RETRY_FIRST_S
        self.degraded = text
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, _RETRY_MAX_S)
        if first:
            self._emit("degraded", text)

    def _retry(self) -> None:
        if self._needs_reopen:
            assert self._reopen is not None
            try:
                self._con = self._reopen()
                self._ap = make_appenders(self._con)
                self._needs_reopen = False
            except Exception as e:
                self._degrade(Persistent(e))
                return
        if self._unlogged:
            self._commit_batch([])
        if self._pending:
            self._apply_pending()
        if not (self._pending or self._unlogged or self._needs_reopen) and self.degraded:
            was = self.degraded
            self.degraded = None
            self._emit("resumed", f"the store takes writes again (it was degraded: {was})")

    # -- logging a group
    def _answer(self, items: list, error: BaseException | None) -> None:
        try:
            self._on_done([(token, error) for _ops, token in items])  # one wake-up per batch
        except Exception:
            log.exception("writer completion hook failed")

    def _commit_batch(self, batch: list) -> None:
        """Log one group (append + fdatasync), then tell its submitters."""
        items = self._unlogged + batch if self._unlogged else batch
        ops = [op for item in items for op in item[0]]
        error: BaseException | None = None
        if ops:
            try:
                payload = encode_ops(ops)
            except Exception as e:  # a bug: an op that does not pickle; not acknowledged
                log.error("encoding %d writes failed: %s", len(ops), e)
                error = e
            if error is None:
                if self._log is not None:
                    try:
                        self._log.append(self._seq + 1, payload)
                    except OSError as e:  # not durable, so not acknowledged: retried later
                        self._unlogged = items
                        self._degrade(e)
                        return
                self._seq += 1
                if not self._pending:
                    self._pending_since = time.monotonic()
                self._pending.append((self._seq, ops))
                self._pending_ops += len(ops)
                self.batches += 1
                self.ops_written += len(ops)
                if self._on_state_commit is not None:
                    changes = state_changes(ops)
                    if changes:
                        self._on_state_commit(changes)
        self._unlogged = []
        self._answer(items, error)

    # -- applying logged groups to DuckDB
    def _apply_pending(self) -> None:
        failed = self._apply_groups()
        if failed is not None:
            self._degrade(failed)

    def _apply_groups(self) -> Persistent | None:
        """Write the logged groups into DuckDB and empty the log.

        Groups are coalesced into one transaction, except that a purge ends one: rows
        written after a purge may reuse the purged ids (a workflow run again). On a
        persistent failure the groups not applied stay pending (and in the log), and the
        failure is returned.
        """
        try:
            segment: list[tuple[int, list[Op]]] = []
            for group in self._pending:
                segment.append(group)
                if any(isinstance(op, (PurgeInvocation, PurgeWorkflow)) for op in group[1]):
                    self._apply_segment(segment)
                    segment = []
            if segment:
                self._apply_segment(segment)
        except Persistent as e:
            self._pending = [g for g in self._pending if g[0] > self._applied_seq]
            self._pending_ops = sum(len(ops) for _seq, ops in self._pending)
            return e
        self._pending = []
        self._pending_ops = 0
        if self._log is not None:
            try:
                self._log.reset()
            except OSError as e:  # the log grows until the next reset; nothing is lost
                log.warning("emptying %s failed: %s", self._log.path, e)
        return None

    def _apply_segment(self, segment: list[tuple[int, list[Op]]]) -> None:
        try:
            self._apply([op for _seq, ops in segment for op in ops], segment[-1][0])
            return
        except Exception as e:
            if persistent(e):
                raise Persistent(e) from e
            log.warning(
                "DuckDB refused %d write groups together (%s); applying them one by one",
                len(segment),
                str(e).splitlines()[0] if str(e) else type(e).__name__,
            )
        for seq, ops in segment:
            try:
                self._apply(ops, seq)
                continue
            except Exception as e:
                if persistent(e):
                    raise Persistent(e) from e
                first = e

            def attempt(some: list[Op], refused: list[Refusal], commit: bool, seq=seq) -> None:
                self._apply(some, seq, refused, commit)

            for r in sift(ops, seq, first, attempt, datetime.now(UTC).replace(tzinfo=None)):
                self.refused += 1
                if r.invocation_id is not None:
                    self._refused_ids[r.invocation_id] = r.describe()
                self._emit(
                    "refused",
                    f"write refused: {r.describe()}; the rest of its write group is applied, "
                    "the refused operation is kept in the table refused_writes",
                    r.invocation_id,
                )

    def _next_history_seq(self) -> int:
        self._history_seq += 1
        return self._history_seq

    def _apply(
        self, ops: list[Op], seq: int, refused: list[Refusal] | tuple = (), commit: bool = True
    ) -> None:
        apply_ops(
            self._con,
            self._ap,
            ops,
            seq,
            self._next_history_seq,
            refused=refused,
            refused_ids=self._refused_ids,
            commit=commit,
        )
        if commit:
            self._dirty = True
            self._applied_seq = seq
