"""Failures and logs in-process: the migration of older stores, the capture of prints
and log records (lines, threads, replay, bounds) and `durable.testing`."""

from __future__ import annotations

import asyncio
import contextvars
import json
import sys
import threading
from datetime import timedelta

import duckdb
import durable
import pytest
from durable import Context, RetryPolicy, Service, TerminalError
from durable.devtool.logcapture import MAX_LINE, Capture, LogLine
from durable.devtool.store import Store, queries
from durable.devtool.store.schema import MIGRATIONS
from durable.logging import current_executor
from durable.testing import Runtime

pytestmark = pytest.mark.timeout(60)


def test_an_older_store_gets_failed_rows_and_the_new_tables(tmp_path):
    path = str(tmp_path / "old.duckdb")
    con = duckdb.connect(path)
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
    )
    for version, statements in enumerate(MIGRATIONS[:3], 1):
        for stmt in statements:
            con.execute(stmt)
        con.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])

    def row(inv_id: str, status: str, code: int | None) -> list:
        attrs = {"failure_code": code, "failure_message": "boom" if code else None}
        return [inv_id, "S", "h", None, status, "2026-01-01", "2026-01-01", json.dumps(attrs)]

    for r in (
        row("inv_a", "completed", 500),  # ended with a failure: now 'failed'
        row("inv_b", "completed", None),
        row("inv_c", "killed", 409),
        row("inv_d", "cancelled", 409),
    ):
        con.execute("INSERT INTO invocations VALUES (?, ?, ?, ?, ?, ?, ?, ?)", r)
    con.close()

    store = Store.open(path)
    try:
        rows = store.read_sync(
            lambda cur: cur.execute("SELECT id, status FROM invocations ORDER BY id").fetchall()
        )
        assert rows == [
            ("inv_a", "failed"),
            ("inv_b", "completed"),
            ("inv_c", "killed"),
            ("inv_d", "cancelled"),
        ]
        assert store.read_sync(lambda cur: queries.attempts(cur, "inv_a")) == []
        assert store.read_sync(lambda cur: queries.logs(cur, "inv_a")) == []
    finally:
        store.close()


class _Ex:
    """What the capture asks of an executor."""

    def __init__(self, inv_id: str, replaying: bool = False) -> None:
        self.start = type("S", (), {"invocation_id": inv_id})()
        self.replaying = replaying


async def test_capture_routes_lines_by_invocation_and_passes_the_rest():
    got: list[LogLine] = []
    capture = Capture(got.append, asyncio.get_running_loop(), fallback=False)
    before = sys.stdout
    capture.install()
    try:
        print("outside any handler")  # passes through (pytest captures it)
        token = current_executor.set(_Ex("inv_1"))  # type: ignore[arg-type]
        try:
            print("one")
            sys.stdout.write("part")
            sys.stdout.write("ial\ntwo\n")
            print("x" * (MAX_LINE + 10))
            print("to stderr", file=sys.stderr)
            print("lone \ud800 surrogate")
            durable.getLogger("t").info("hello %s", "you")
            durable.getLogger("t").debug("not shown: below INFO")
            ctx = contextvars.copy_context()  # as ctx.run body threads do
            t = threading.Thread(target=ctx.run, args=(print, "from a thread"))
            t.start()
            t.join()
        finally:
            current_executor.reset(token)
        token = current_executor.set(_Ex("inv_2", replaying=True))  # type: ignore[arg-type]
        try:
            print("said before: a replay stays quiet")
            durable.getLogger("t").warning("quiet too")
        finally:
            current_executor.reset(token)
        await asyncio.sleep(0.05)  # the thread's line comes on the loop
    finally:
        capture.uninstall()
    assert sys.stdout is before
    lines = [(g.invocation_id, g.stream, g.level, g.text) for g in got]
    assert lines[:3] == [
        ("inv_1", "stdout", None, "one"),
        ("inv_1", "stdout", None, "partial"),
        ("inv_1", "stdout", None, "two"),
    ]
    long = lines[3][3]
    assert long.startswith("x" * MAX_LINE) and long.endswith("[cut: 10 more characters]")
    assert lines[4:] == [
        ("inv_1", "stderr", None, "to stderr"),
        ("inv_1", "stdout", None, "lone ? surrogate"),
        ("inv_1", "log", "INFO", "t: hello you"),
        ("inv_1", "stdout", None, "from a thread"),
    ]


async def test_durable_testing_keeps_logs_and_attempts():
    svc = Service("T", retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=1)))
    calls = []

    @svc.handler()
    async def go(ctx: Context, n: int) -> int:
        print(f"attempt for {n}")
        calls.append(n)
        if len(calls) == 1:
            raise ValueError("first \ud800 time")  # a lone surrogate: stored as "?"
        if n < 0:
            raise TerminalError("negative", 422)
        return n

    async with Runtime([svc], virtual_clock=False) as rt:
        ok = await rt.send(go, 5)
        assert await rt.output(ok) == 5
        bad = await rt.send(go, -1)
        with pytest.raises(TerminalError):
            await rt.output(bad)
        assert await rt.status(bad) == "failed"
        assert await rt.logs(ok) == ["attempt for 5", "attempt for 5"]
        assert await rt.logs(bad) == ["attempt for -1"]
        [retried] = await rt.failed_attempts(ok)
        assert (retried["attempt"], retried["outcome"], retried["error"]) == (
            1,
            "backing-off",
            "ValueError: first ? time",  # a lone surrogate cannot be stored: "?"
        )
        [failed] = await rt.failed_attempts(bad)
        assert (failed["outcome"], failed["error"]) == ("failed", "TerminalError(422): negative")
        for a in (retried, failed):
            assert "test_logs_attempts_inprocess.py:" in a["location"]
            assert "Traceback" in a["stack"]
        rows = await rt.engine.store.read(
            lambda cur: cur.execute("SELECT attempt FROM logs ORDER BY seq").fetchall()
        )
        assert rows == [(1,), (2,), (1,)]  # the attempt each line came from
