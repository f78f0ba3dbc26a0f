"""The operation log in front of DuckDB: commits are durable in the log, DuckDB gets them
later, and a crash at any point between the two loses and duplicates nothing.

A crash is a real one: a child process writes, waits for the commits, and leaves with
``os._exit`` (no close, no apply); the test then opens the same files.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime

import pytest
from durable.devtool.store import Store, queries
from durable.devtool.store.oplog import OpLog, encode_ops, log_path
from durable.devtool.store.ops import PutIdempotency, SetState

pytestmark = pytest.mark.timeout(60)

AT = datetime(2026, 1, 1)

_CRASHER = textwrap.dedent(
    """
    import asyncio, os, sys
    from datetime import datetime
    from durable.devtool.store import Store
    from durable.devtool.store.ops import SetState

    async def main(path, n):
        store = Store.open(path)
        for i in range(n):  # n commits, each awaited: each is durable when it returns
            await store.write([SetState("Counter", "k", f"n{i}", str(i), None, None, datetime(2026, 1, 1))])
        print("committed", flush=True)
        os._exit(0)  # a crash: no close, no apply into DuckDB

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def crash_after_writes(path: str, n: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CRASHER, path, str(n)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and "committed" in out.stdout, out.stderr


def state_rows(path: str) -> dict[str, str]:
    store = Store.open(path, read_only=True)
    try:
        return store.read_sync(queries.state, "Counter", "k")
    finally:
        store.close()


def test_commits_left_in_the_log_by_a_crash_are_applied_at_the_next_open(tmp_path):
    path = str(tmp_path / "d.duckdb")
    crash_after_writes(path, 5)
    assert os.path.getsize(log_path(path)) > 0  # DuckDB does not have them yet
    store = Store.open(path)
    try:
        assert store.writer is not None and store.writer.recovered == 5
        assert store.read_sync(queries.state, "Counter", "k") == {f"n{i}": str(i) for i in range(5)}
        assert os.path.getsize(log_path(path)) == 0
    finally:
        store.close()


def test_a_log_already_in_duckdb_is_not_applied_twice(tmp_path):
    """A crash after the DuckDB commit but before the log was emptied."""
    path = str(tmp_path / "d.duckdb")
    crash_after_writes(path, 3)
    saved = str(tmp_path / "saved.oplog")
    shutil.copy(log_path(path), saved)
    Store.open(path).close()  # applies the log and empties it
    shutil.copy(saved, log_path(path))  # as if emptying it had not happened
    store = Store.open(path)
    try:
        assert store.writer is not None and store.writer.recovered == 0
        history = store.read_sync(queries.state_history, "Counter", "k")
        assert len(history) == 3  # each change once
    finally:
        store.close()


def test_a_torn_last_record_is_dropped_and_the_rest_applied(tmp_path):
    path = str(tmp_path / "d.duckdb")
    crash_after_writes(path, 4)
    size = os.path.getsize(log_path(path))
    with open(log_path(path), "r+b") as f:
        f.truncate(size - 3)  # the crash hit the middle of the last append
    assert state_rows(path) == {f"n{i}": str(i) for i in range(3)}


def test_a_read_only_open_after_a_crash_sees_every_commit(tmp_path):
    """`durable invocations ls --store` with no runtime up, after a kill -9."""
    path = str(tmp_path / "d.duckdb")
    crash_after_writes(path, 2)
    assert state_rows(path) == {"n0": "0", "n1": "1"}


def test_records_out_of_sequence_end_the_log(tmp_path):
    p = str(tmp_path / "x.oplog")
    log = OpLog(p)
    one = [SetState("S", "k", "a", "1", None, None, AT)]
    log.append(1, encode_ops(one))
    log.append(2, encode_ops(one))
    log.append(2, encode_ops(one))  # stale bytes after a reset that did not reach the disk
    log.close()
    assert [seq for seq, _ops in OpLog(p).records()] == [1, 2]


async def test_a_write_duckdb_refuses_is_reported_and_later_writes_still_land(tmp_path, caplog):
    path = str(tmp_path / "d.duckdb")
    store = await asyncio.to_thread(Store.open, path)
    try:
        await store.write([PutIdempotency("S//h", "once", "inv_1", AT)])
        await store.write([PutIdempotency("S//h", "once", "inv_2", AT)])  # same key: refused
        await store.write([SetState("Counter", "k", "after", "1", None, None, AT)])
        assert await store.read(queries.idempotent_invocation, "S//h", "once") == "inv_1"
        assert await store.read(queries.state, "Counter", "k") == {"after": "1"}
        assert "write refused: invocation inv_2" in caplog.text
        refused = await store.read(
            lambda cur: cur.execute(
                "SELECT invocation_id, operation FROM refused_writes"
            ).fetchall()
        )
        assert refused == [("inv_2", "PutIdempotency")]
    finally:
        await asyncio.to_thread(store.abandon)


async def test_abandon_loses_what_was_queued_and_keeps_what_was_logged(tmp_path):
    """``Store.abandon`` is the in-process crash of the engine property test: a write
    still queued (not logged) is lost, an acknowledged one is kept."""
    import threading

    path = str(tmp_path / "d.duckdb")
    store = Store.open(path)
    writer = store.writer
    assert writer is not None
    held, release = threading.Event(), threading.Event()
    answer = writer._on_done

    def answer_then_hold(results):  # writer thread, once a group is logged and answered
        answer(results)
        if not held.is_set():
            held.set()
            release.wait(10)

    writer._on_done = answer_then_hold
    op = SetState("Counter", "k", "logged", "1", None, None, AT)
    await store.write([op])  # acknowledged; the writer thread now waits
    queued = store.write([SetState("Counter", "k", "queued", "1", None, None, AT)])
    crash = asyncio.create_task(asyncio.to_thread(store.abandon))
    await asyncio.sleep(0.01)
    release.set()
    await crash
    assert not queued.done()  # never acknowledged
    assert state_rows(path) == {"logged": "1"}
