"""The DuckDB store: one file, one writer thread, a pool of reader threads.

``Store.open`` takes the file (failing with :class:`StoreLockedError` when another
process holds it), applies migrations, and starts the writer. ``write`` queues
operations for group commit (durable in the operation log, :mod:`.oplog`); ``read`` has
the writer put every committed write into DuckDB first, then runs a query function on a
reader thread, so no DuckDB call ever runs on the event loop; ``state`` answers a key's
committed state from a cache the writer keeps current (:mod:`.statecache`).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import duckdb

from ..errors import DevtoolError, StoreDegraded, StoreLockedError
from . import ops, queries
from .opening import check_contents, check_file, open_error
from .oplog import log_path
from .schema import migrate
from .statecache import StateCache
from .writer import Writer

__all__ = ["Store", "StoreLockedError", "ops", "queries", "connect_config", "answer_now"]

T = TypeVar("T")
log = logging.getLogger("durable.store")

#: Set in a request that would rather fail (503) than wait while the store is degraded.
answer_now: contextvars.ContextVar[bool] = contextvars.ContextVar("answer_now", default=False)

#: DuckDB may not reach the network for extensions (INSTALL fails offline)
connect_config: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def _holder_file(path: str) -> str:
    return path + ".holder.json"


def _locked_message(path: str, err: Exception) -> str:
    holder = ""
    try:
        with open(_holder_file(path)) as f:
            info = json.load(f)
        holder = f" by {info.get('what', 'a durable runtime')} (PID {info.get('pid')})"
        if info.get("admin_url"):
            holder += f", admin API at {info['admin_url']}"
    except (OSError, ValueError):
        m = re.search(r"PID (\d+)", str(err))
        if m:
            holder = f" by PID {m.group(1)}"
    return (
        f"the store {path} is in use{holder}. Only one process can hold a DuckDB file: stop "
        "that runtime, talk to it with --url, or start this one with another --store "
        "(or --store :memory:)."
    )


def _resolve(results: list[tuple[Any, BaseException | None]]) -> None:
    for token, exc in results:
        if token is None:
            continue
        if isinstance(token, asyncio.Future):
            if token.done():
                continue
            if exc is None:
                token.set_result(None)
            else:
                token.set_exception(exc)
        else:
            token(exc)


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any]) -> Callable[[], None]:
    """A callback for the writer thread that runs ``fn`` on ``loop`` (unless it closed)."""

    def call() -> None:
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the loop is closed (shutdown)
            pass

    return call


class Store:
    """The open store; see the module docstring."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: str,
        read_only: bool = False,
        repair: bool = False,
    ) -> None:
        self.path = path
        self.persistent = path != ":memory:"
        self.read_only = read_only
        self._con = con
        self._gen = 0  # bumped when the connection is reopened: reader cursors are renewed
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="durable-reader")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Callable[[str, str, str | None], None]] = []
        self.state_cache = StateCache()
        self.writer: Writer | None = (
            None
            if read_only
            else Writer(
                con.cursor(),
                log_path(path) if self.persistent else None,
                self._batch_done,
                self.state_cache.committed,
                store_path=path,
                on_event=self._store_event,
                reopen=self._reopen if self.persistent else None,
                repair=repair,
            )
        )

    @classmethod
    def open(
        cls, path: str, holder: dict | None = None, read_only: bool = False, repair: bool = False
    ) -> Store:
        """Open (creating if needed) the store at ``path`` or ``:memory:``.

        Fails with :class:`StoreLockedError` when another process holds it, with
        :class:`StoreOpenError` (one line: the cause and what to do) when it cannot be
        opened, and with :class:`StoreDamagedError` when its operation log is damaged
        (``repair=True`` then loses only the damaged records)."""
        if path != ":memory:":
            path = os.path.abspath(path)
            if not read_only:
                try:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                except OSError as e:
                    raise open_error(path, e) from None
            elif os.path.getsize(log_path(path)) if os.path.exists(log_path(path)) else 0:
                # a crashed runtime left committed writes in the log: put them in DuckDB
                cls.open(path, {"what": "durable (recovering the store)"}).close()
            check_file(path)
        try:
            con = duckdb.connect(path, read_only=read_only, config=connect_config)
        except (duckdb.Error, OSError) as e:
            if isinstance(e, duckdb.IOException) and "lock" in str(e).lower():
                raise StoreLockedError(_locked_message(path, e)) from None
            raise open_error(path, e) from None
        try:
            # jemalloc's background threads give freed pages back to the system: without
            # them the memory of rows already checkpointed stays in the process (10,000
            # suspended invocations: +28 MiB instead of +10 MiB)
            con.execute("SET allocator_background_threads = true")
            check_contents(con, path)
            if not read_only:
                migrate(con)
                if path != ":memory:":
                    with open(_holder_file(path), "w") as f:
                        json.dump({"pid": os.getpid(), **(holder or {})}, f)
            return cls(con, path, read_only, repair)
        except DevtoolError:
            con.close()
            raise
        except (duckdb.Error, OSError) as e:
            con.close()
            raise open_error(path, e) from None

    def _reopen(self) -> duckdb.DuckDBPyConnection:
        """Writer thread: a new connection after DuckDB invalidated this one (a fatal
        error, such as a checkpoint on a full disk); returns the writer's cursor."""
        try:
            self._con.close()
        except duckdb.Error:
            pass
        con = duckdb.connect(self.path, config=connect_config)
        con.execute("SET allocator_background_threads = true")
        self._con = con
        self._gen += 1
        return con.cursor()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cur", None)
        if cur is None or self._local.gen != self._gen:
            cur = self._con.cursor()
            self._local.cur = cur
            self._local.gen = self._gen
        return cur

    @property
    def degraded(self) -> str | None:
        """Why the store takes no new work now (None: it does); it retries by itself."""
        return self.writer.degraded if self.writer is not None else None

    def listen(self, fn: Callable[[str, str, str | None], None]) -> None:
        """Call ``fn(kind, text, invocation_id)`` on the writer thread for ``degraded``,
        ``resumed`` and ``refused`` (an operation set aside in ``refused_writes``); with
        no listener these go to the ``durable.store`` logger."""
        self._listeners.append(fn)

    def _store_event(self, kind: str, text: str, invocation_id: str | None) -> None:
        if not self._listeners:
            prefix = "store degraded: " if kind == "degraded" else ""
            log.log(logging.WARNING if kind == "resumed" else logging.ERROR, prefix + text)
        for fn in self._listeners:
            fn(kind, text, invocation_id)

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a query function on the calling thread (CLI, tests; never the event loop)."""
        if self.writer is not None and self.writer.unapplied:
            done = threading.Event()
            self.writer.flush(done.set)
            done.wait()
        return fn(self._cursor(), *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a query function (first argument: a cursor) on a reader thread.

        Every write committed before the call is in DuckDB when ``fn`` runs: while the
        store is degraded the read waits for that, or, where :data:`answer_now` is set
        (the admin API's requests), fails at once with :class:`StoreDegraded`."""
        loop = asyncio.get_running_loop()
        if self.writer is not None and self.writer.unapplied:
            if self.writer.degraded is not None and answer_now.get():
                raise StoreDegraded(f"the store cannot answer now: {self.writer.degraded}")
            await self.flush()
        return await loop.run_in_executor(self._readers, lambda: fn(self._cursor(), *args))

    def after_apply(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the event loop once every write committed so far is in DuckDB."""
        assert self.writer is not None
        self.writer.on_applied(_on_loop(asyncio.get_running_loop(), fn))

    async def flush(self) -> None:
        """Wait until every committed write is in DuckDB (readers do this first)."""
        assert self.writer is not None
        fut = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not fut.done():
                fut.set_result(None)

        self.writer.flush(_on_loop(fut.get_loop(), done))
        await fut

    async def state(self, service: str, key: str) -> dict[str, str]:
        """The committed state of one object or workflow key (from memory when cached)."""
        k = (service, key)
        cached = self.state_cache.get(k)
        if cached is not None:
            return cached
        token = self.state_cache.begin_read(k)
        found: dict[str, str] | None = None
        try:
            found = await self.read(queries.state, service, key)
        finally:
            self.state_cache.end_read(k, token, found)
        return found

    def write(self, items: list[ops.Op]) -> asyncio.Future:
        """Queue operations for the next group commit; await the result for durability."""
        assert self.writer is not None, "the store was opened read-only"
        loop = self._loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not items and self.writer.degraded is not None and answer_now.get():
            # a barrier before a read, in a request that would rather fail than wait
            fut.set_exception(StoreDegraded(f"the store cannot answer now: {self.writer.degraded}"))
            return fut
        self.writer.submit(items, fut)
        return fut

    def write_nowait(
        self, items: list[ops.Op], callback: Callable[[BaseException | None], None] | None = None
    ) -> None:
        """Queue operations; ``callback`` runs on the event loop after the commit."""
        assert self.writer is not None, "the store was opened read-only"
        if callback is not None:
            self._loop = asyncio.get_running_loop()
        self.writer.submit(items, callback)

    def _batch_done(self, results: list[tuple[Any, BaseException | None]]) -> None:
        """Writer thread: hand a committed batch's results to the loop in one wake-up."""
        if self._loop is None or not any(token is not None for token, _ in results):
            return
        try:
            self._loop.call_soon_threadsafe(_resolve, results)
        except RuntimeError:  # the loop is closed (shutdown)
            pass

    def abandon(self) -> None:
        """Release the file as a crash would (tests): writes queued and not yet logged are
        lost, logged ones not yet in DuckDB wait in the log for the next open."""
        if self.writer is not None:
            self.writer.abandon()
        self._readers.shutdown(wait=True)
        self._con.close()

    def close(self) -> None:
        """Commit what is queued, checkpoint, release the file."""
        if self.writer is not None:
            self.writer.close()
        self._readers.shutdown(wait=True)
        self._con.close()
        if self.persistent and not self.read_only:
            try:
                os.remove(_holder_file(self.path))
            except OSError:
                pass
