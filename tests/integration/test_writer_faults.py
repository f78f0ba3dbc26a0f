"""The writer never drops an acknowledged write: an operation DuckDB refuses is set aside
with its invocation named, the rest of its group is applied; a damaged operation log is
refused, not silently cut; a store that cannot be opened says why in one line.

Real files in tmp_path, real crashes (a child process that leaves with ``os._exit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime

import duckdb
import pytest
from durable.devtool.errors import StoreDamagedError, StoreOpenError
from durable.devtool.store import Store, queries
from durable.devtool.store.oplog import log_path, scan
from durable.devtool.store.ops import AppendEntry, InvocationRow, PutInvocation, SetState
from durable.messages import EntryKind, JournalEntry

pytestmark = pytest.mark.timeout(60)

AT = datetime(2026, 1, 1)
BAD = "\ud800"  # a lone surrogate: no UTF-8 for it, DuckDB refuses the string


def row(inv_id: str, status: str = "running") -> InvocationRow:
    return InvocationRow(
        id=inv_id,
        service="Counter",
        handler="add",
        key="k",
        service_kind="object",
        handler_kind="exclusive",
        status=status,
        input="1",
        headers="{}",
        idempotency_key=None,
        output=None,
        failure_code=None,
        failure_message=None,
        attempt=1,
        next_retry_at=None,
        last_error=None,
        last_error_stack=None,
        waiting_on=None,
        parent_id=None,
        parent_entry=None,
        restarted_from=None,
        scheduled_at=None,
        cancel_requested=False,
        journal_length=1,
        created_at=AT,
        modified_at=AT,
        completed_at=None,
    )


def invocation(inv_id: str) -> list:
    return [
        PutInvocation(row(inv_id), new=True),
        AppendEntry(inv_id, JournalEntry(0, EntryKind.INPUT, None, "1", None, None, True), AT),
    ]


def state(name: str, value: str, inv_id: str | None = None, index: int | None = None):
    return SetState("Counter", "k", name, value, inv_id, index, AT)


def sql(store: Store, query: str) -> list[tuple]:
    return store.read_sync(lambda cur: cur.execute(query).fetchall())


def test_a_refused_op_is_set_aside_and_the_rest_of_its_group_applied(tmp_path, caplog):
    path = str(tmp_path / "d.duckdb")
    store = Store.open(path)
    try:

        async def go() -> None:
            # one group: two invocations, good state, and one value DuckDB cannot store
            await store.write(
                [
                    *invocation("inv_a"),
                    state("a", "1", "inv_a", 1),
                    *invocation("inv_b"),
                    state("bad", BAD, "inv_b", 1),
                    state("b", "2", "inv_b", 2),
                ]
            )
            await store.write([state("later", "3")])

        asyncio.run(go())
        assert store.read_sync(queries.state, "Counter", "k") == {"a": "1", "b": "2", "later": "3"}
        rows = dict(sql(store, "SELECT id, status FROM invocations"))
        assert rows == {"inv_a": "running", "inv_b": "paused"}
        err = sql(store, "SELECT last_error FROM invocation_details WHERE id = 'inv_b'")[0][0]
        assert "entry 1" in err and "SetState" in err and "surrogate" in err
        refused = sql(store, "SELECT invocation_id, entry_index, operation FROM refused_writes")
        assert refused == [("inv_b", 1, "SetState")]
        assert "write refused: invocation inv_b entry 1" in caplog.text
        assert store.writer is not None and store.writer.refused == 1
    finally:
        store.close()


_CRASHER = textwrap.dedent(
    """
    import asyncio, os, sys
    from datetime import datetime
    from durable.devtool.store import Store
    from durable.devtool.store.ops import SetState

    AT = datetime(2026, 1, 1)

    async def main(path):
        store = Store.open(path)
        # queued together: one group, with a value DuckDB refuses in the middle
        store.write_nowait([SetState("Counter", "k", "g1", "1", "inv_1", 1, AT)])
        store.write_nowait([SetState("Counter", "k", "bad", "\\ud800", "inv_2", 1, AT)])
        await store.write([SetState("Counter", "k", "g2", "2", "inv_3", 1, AT)])
        for i in range(3):
            await store.write([SetState("Counter", "k", f"n{i}", str(i), None, None, AT)])
        print("committed", flush=True)
        os._exit(0)  # a crash: no close, no apply into DuckDB

    asyncio.run(main(sys.argv[1]))
    """
)


def crash_with_a_refused_write(path: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CRASHER, path], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and "committed" in out.stdout, out.stderr


def test_recovery_applies_a_group_beside_its_refused_op_and_later_groups(tmp_path, caplog):
    path = str(tmp_path / "d.duckdb")
    crash_with_a_refused_write(path)
    store = Store.open(path)
    try:
        got = store.read_sync(queries.state, "Counter", "k")
        assert got == {"g1": "1", "g2": "2", "n0": "0", "n1": "1", "n2": "2"}
        assert sql(store, "SELECT invocation_id FROM refused_writes") == [("inv_2",)]
        assert os.path.getsize(log_path(path)) == 0
    finally:
        store.close()
    Store.open(path).close()  # nothing left to apply, nothing refused twice
    store = Store.open(path, read_only=True)
    try:
        assert len(sql(store, "SELECT * FROM refused_writes")) == 1
    finally:
        store.close()


def _flip_middle_record(path: str) -> tuple[int, int]:
    """Flip one byte in the body of a record in the middle of the log: (offset, seq)."""
    found = scan(log_path(path))
    assert len(found.records) >= 5 and not found.damage
    with open(log_path(path), "rb") as f:
        data = bytearray(f.read())
    # find the offset of the third record by walking the headers
    pos = 0
    for _ in range(2):
        length = int.from_bytes(data[pos : pos + 4], "little")
        pos += 16 + length
    seq = found.records[2][0]
    data[pos + 16 + 5] ^= 0xFF
    with open(log_path(path), "wb") as f:
        f.write(data)
    return pos, seq


def _crash_after(path: str, n: int) -> None:
    code = textwrap.dedent(
        """
        import asyncio, os, sys
        from datetime import datetime
        from durable.devtool.store import Store
        from durable.devtool.store.ops import SetState

        async def main(path, n):
            store = Store.open(path)
            for i in range(n):
                await store.write([SetState("S", "k", f"n{i}", str(i), None, None, datetime(2026, 1, 1))])
            print("committed", flush=True)
            os._exit(0)

        asyncio.run(main(sys.argv[1], int(sys.argv[2])))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, path, str(n)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr


def test_a_flipped_byte_mid_log_refuses_to_open_and_repair_loses_only_that_record(tmp_path):
    path = str(tmp_path / "d.duckdb")
    _crash_after(path, 6)
    offset, seq = _flip_middle_record(path)
    with pytest.raises(StoreDamagedError) as e:
        Store.open(path)
    message = str(e.value)
    assert f"at offset {offset}" in message and f"group {seq}" in message
    assert "3 intact records" in message and "durable store repair" in message
    with pytest.raises(StoreOpenError):  # a read-only open recovers first: refused too
        Store.open(path, read_only=True)
    Store.open(path, repair=True).close()
    assert any(".damaged-" in name for name in os.listdir(tmp_path))  # the log is kept
    store = Store.open(path, read_only=True)
    try:
        got = store.read_sync(queries.state, "S", "k")
        assert got == {f"n{i}": str(i) for i in range(6) if i != 2}
    finally:
        store.close()


def test_damage_in_groups_duckdb_already_holds_is_no_loss(tmp_path):
    """A crash after the DuckDB commit, before the log was emptied; then a bad byte."""
    path = str(tmp_path / "d.duckdb")
    _crash_after(path, 6)
    saved = str(tmp_path / "saved.oplog")
    shutil.copy(log_path(path), saved)
    Store.open(path).close()
    shutil.copy(saved, log_path(path))
    _flip_middle_record(path)
    Store.open(path).close()  # every group is in DuckDB: nothing is lost, it opens


# -- start-up errors: one line that names the cause


def _good_store(path: str) -> None:
    store = Store.open(path)
    try:

        async def fill() -> None:
            for i in range(20):
                await store.write([state(f"n{i}", "x" * 2000)])

        asyncio.run(fill())
        store.read_sync(lambda cur: cur.execute("CHECKPOINT").fetchall())
    finally:
        store.close()


def _one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_a_zeroed_header_is_named(tmp_path):
    path = str(tmp_path / "d.duckdb")
    _good_store(path)
    with open(path, "r+b") as f:
        f.write(b"\0" * 4096)
    with pytest.raises(StoreOpenError) as e:
        Store.open(path)
    assert "header is zeroed" in _one_line(e.value)


def test_a_text_file_is_not_a_store(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("meeting notes\n" * 100)
    with pytest.raises(StoreOpenError) as e:
        Store.open(str(path))
    assert "is not a durable store: it holds text" in _one_line(e.value)
    assert path.read_text() == "meeting notes\n" * 100  # untouched


def test_another_duckdb_database_is_not_a_store(tmp_path):
    path = str(tmp_path / "other.duckdb")
    con = duckdb.connect(path)
    con.execute("CREATE TABLE sales (id INTEGER)")
    con.close()
    with pytest.raises(StoreOpenError) as e:
        Store.open(path)
    assert "another DuckDB database (tables: sales)" in _one_line(e.value)


def test_a_store_cut_to_half_is_damaged(tmp_path):
    path = str(tmp_path / "d.duckdb")
    _good_store(path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(StoreOpenError) as e:
        Store.open(path)
    assert "is damaged: the file has" in _one_line(e.value) and "cut short" in str(e.value)


def test_a_store_whose_last_blocks_were_freed_is_not_damaged(tmp_path):
    """A checkpoint cuts freed blocks off the end of the file while DuckDB's
    ``total_blocks`` still counts them: the store is whole (found by the engine
    property test, whose crashes left such files)."""
    path = str(tmp_path / "d.duckdb")
    _good_store(path)
    con = duckdb.connect(path)
    con.execute(
        "CREATE TABLE scratch AS SELECT range AS x, md5(range::VARCHAR) AS y FROM range(300000)"
    )
    con.execute("CHECKPOINT")
    con.execute("DROP TABLE scratch")
    con.execute("CHECKPOINT")
    con.close()
    store = Store.open(path)
    store.close()


def test_garbage_in_the_wal_is_named(tmp_path):
    path = str(tmp_path / "d.duckdb")
    _crash_after(path, 3)
    Store.open(path).close()
    con = duckdb.connect(path)  # rows in the WAL, not checkpointed: a crash
    con.execute("SET checkpoint_threshold = '1GB'")
    con.execute("INSERT INTO state VALUES ('S', 'k', 'w', '1')")
    wal = path + ".wal"
    shutil.copy(wal, wal + ".saved")
    con.close()
    with open(wal + ".saved", "rb") as f:
        data = bytearray(f.read())
    for i in range(len(data) // 3, len(data) // 3 + 40):
        data[i] ^= 0xFF
    with open(wal, "wb") as f:
        f.write(data)
    with pytest.raises(StoreOpenError) as e:
        Store.open(path)
    assert "write-ahead log" in _one_line(e.value) and "is damaged" in str(e.value)


# -- persistent failures: degraded, nothing dropped, resumes by itself


def _wait(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_duckdb_failing_while_the_log_works_degrades_and_resumes(tmp_path):
    """The log append fits, DuckDB's commit fails (its WAL cannot be created): the
    groups stay in the log, the store says why, and it resumes once the cause is gone."""
    path = str(tmp_path / "d.duckdb")
    events: list[tuple[str, str]] = []
    store = Store.open(path)
    store.listen(lambda kind, text, _inv: events.append((kind, text)))
    try:

        async def go() -> None:
            await store.write([state("a", "1")])
            await store.flush()
            await asyncio.to_thread(
                store.read_sync, lambda cur: cur.execute("CHECKPOINT").fetchall()
            )
            os.mkdir(path + ".wal")  # DuckDB cannot write its WAL now
            for i in range(5):
                await store.write([state(f"b{i}", str(i))])  # durable in the log: acknowledged
            assert await asyncio.to_thread(_wait, lambda: store.degraded is not None)
            assert "cannot be written" in store.degraded and path in store.degraded
            assert os.path.getsize(log_path(path)) > 0  # nothing dropped
            reading = asyncio.ensure_future(store.read(queries.state, "Counter", "k"))
            await asyncio.sleep(0.5)
            assert not reading.done()  # a read waits for every acknowledged write
            os.rmdir(path + ".wal")
            got = await asyncio.wait_for(reading, 10)
            assert got == {"a": "1", **{f"b{i}": str(i) for i in range(5)}}
            assert store.degraded is None

        asyncio.run(go())
        assert [k for k, _ in events] == ["degraded", "resumed"]
    finally:
        store.close()


@contextlib.contextmanager
def small_disk(size_mb: int):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; this run is not root")
    where = tempfile.mkdtemp(prefix="durable-full-")
    out = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}M", "tmpfs", where],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        os.rmdir(where)
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip()}): no small disk to fill")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", where], capture_output=True)
        with contextlib.suppress(OSError):
            os.rmdir(where)


def _fill(path: str) -> None:
    with open(path, "ab", buffering=0) as f:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 512):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)


def test_a_checkpoint_on_a_full_disk_reopens_the_store_once_space_is_back():
    """A failed checkpoint invalidates DuckDB's database: the writer reopens it."""
    with small_disk(16) as disk:
        path = os.path.join(disk, "d.duckdb")
        store = Store.open(path)
        try:

            async def go() -> None:
                # under the WAL size that checkpoints at once (writer.py): the idle one fails
                await store.write([state(f"n{i}", "x" * 1000) for i in range(200)])
                await store.flush()  # in DuckDB's WAL, not checkpointed yet
                _fill(os.path.join(disk, "filler"))
                assert await asyncio.to_thread(_wait, lambda: store.degraded is not None)
                after = store.write([state("after", "1")])  # not durable: it waits
                await asyncio.sleep(0.3)
                assert not after.done()
                os.remove(os.path.join(disk, "filler"))
                await asyncio.wait_for(after, 10)
                assert await asyncio.to_thread(_wait, lambda: store.degraded is None)
                got = await store.read(queries.state, "Counter", "k")
                assert len(got) == 201 and got["after"] == "1"

            asyncio.run(go())
        finally:
            store.close()
        store = Store.open(path, read_only=True)
        try:
            assert len(store.read_sync(queries.state, "Counter", "k")) == 201
        finally:
            store.close()
