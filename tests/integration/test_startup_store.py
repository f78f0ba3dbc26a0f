"""What start-up costs in the store: a short WAL after steady load, live-only queries."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime

import duckdb
import pytest
from durable.devtool.lifecycle import Status
from durable.devtool.store import Store, connect_config, queries
from durable.devtool.store.ops import _ATTRS, SetState

pytestmark = pytest.mark.timeout(60)

AT = datetime(2026, 1, 1)


async def test_the_wal_stays_short_under_steady_load(tmp_path):
    # writes never pause for the idle checkpoint (1 s): the WAL, which DuckDB replays
    # whole at the next open, must still be checkpointed long before its 16 MiB default
    path = str(tmp_path / "d.duckdb")
    store = await asyncio.to_thread(Store.open, path)
    value = '"' + "x" * 60_000 + '"'
    largest = 0
    try:
        for i in range(300):  # ~18 MiB of state, ~36 MiB with its history
            await store.write([SetState("Counter", f"k{i % 50}", "v", value, None, None, AT)])
            try:
                largest = max(largest, os.path.getsize(path + ".wal"))
            except OSError:
                pass
    finally:
        await asyncio.to_thread(store.close)
    assert 0 < largest < 6 * 1024 * 1024, f"the WAL reached {largest} bytes"


def test_the_live_statuses_are_every_status_not_terminal():
    live = set(queries._LIVE)
    assert live | set(queries._TERMINAL) == {s.value for s in Status}
    assert not live & set(queries._TERMINAL)


def _attrs(waiting_on: str | None) -> str:
    d = dict.fromkeys(_ATTRS)
    d.update(service_kind="service", handler_kind="exclusive", attempt=1)
    d.update(cancel_requested=False, journal_length=0, waiting_on=waiting_on)
    return json.dumps(d)


def _insert(con, inv_id: str, status: str, waiting_on: str | None, created: int) -> None:
    attrs = _attrs(waiting_on)
    con.execute(
        "INSERT INTO invocations VALUES (?, 'S', 'h', NULL, ?, "
        "TIMESTAMP '2026-01-01' + to_seconds(?), TIMESTAMP '2026-01-01', ?)",
        [inv_id, status, created, attrs],
    )


def _entry(con, inv_id: str, idx: int, completed: bool) -> None:
    con.execute(
        "INSERT INTO journal VALUES (?, ?, 'awakeable', NULL, NULL, NULL, NULL, NULL, ?, "
        "TIMESTAMP '2026-01-01', NULL)",
        [inv_id, idx, completed],
    )


def test_start_up_finds_the_live_rows_and_the_suspended_ones_to_wake(tmp_path):
    path = str(tmp_path / "d.duckdb")
    Store.open(path).close()
    con = duckdb.connect(path, config=connect_config)
    con.execute(
        "INSERT INTO invocations SELECT 'done_' || i, 'S', 'h', NULL, "
        "CASE i % 3 WHEN 0 THEN 'completed' WHEN 1 THEN 'killed' ELSE 'cancelled' END, "
        "TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01', ? FROM range(3000) t(i)",
        [_attrs("[0]")],
    )
    con.execute(
        "INSERT INTO journal SELECT 'done_' || i, 0, 'awakeable', NULL, NULL, NULL, NULL, "
        "NULL, true, TIMESTAMP '2026-01-01', NULL FROM range(3000) t(i)"
    )
    live = [s.value for s in Status if s.value not in queries._TERMINAL]
    for n, status in enumerate(live):
        _insert(con, f"live_{n}", status, None, n)
    _insert(con, "woken", "suspended", "[1, 2]", 100)  # entry 2 completed: wake it
    _entry(con, "woken", 1, False)
    _entry(con, "woken", 2, True)
    _insert(con, "asleep", "suspended", "[0]", 101)  # nothing completed: stays
    _entry(con, "asleep", 0, False)
    _entry(con, "asleep", 1, True)  # completed, but not awaited
    _insert(con, "no_wait", "suspended", None, 102)
    con.close()
    store = Store.open(path)
    try:
        rows = store.read_sync(queries.active_invocations)
        assert [r.id for r in rows] == [f"live_{n}" for n in range(len(live))] + [
            "woken",
            "asleep",
            "no_wait",
        ]
        assert store.read_sync(queries.woken_suspended) == ["woken"]
    finally:
        store.close()
