"""Faults of the store with real runtimes: nothing acknowledged is ever lost.

A refused operation inside a write group, a full disk (a real tmpfs), a flipped byte in
the operation log, and store files that cannot be opened at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pytest
from durable.devtool.store.oplog import OpLog, encode_ops, log_path, scan
from durable.devtool.store.ops import AppendEntry, PutInvocation, SetState, row_from_db
from durable.ids import new_invocation_id
from durable.messages import EntryKind, JournalEntry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

APP = """
from durable import Context, Service

svc = Service("Echo")

@svc.handler()
async def hi(ctx: Context, name: str) -> str:
    return await ctx.run("greet", lambda: f"hi {name}")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def attach_all(url: str, ids: list[str]) -> dict[str, httpx.Response]:
    async def go() -> dict[str, httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as ac:
            rs = await asyncio.gather(*(ac.get(f"/restate/invocation/{i}/attach") for i in ids))
            return dict(zip(ids, rs, strict=True))

    return asyncio.run(go())


def status_of(srv, inv_id: str) -> dict:
    r = httpx.get(f"{srv.admin_url}/api/invocations/{inv_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _inject_group_with_a_refused_op(store: str, n: int) -> tuple[list[str], str]:
    """Append to the log one group of ``n`` new invocations and, among them, an operation
    DuckDB refuses (a lone surrogate); returns (the new ids, the poisoned one)."""
    con = duckdb.connect(store, read_only=True)
    try:
        applied = con.execute("SELECT seq FROM oplog_applied").fetchall()[0][0]
        template = row_from_db(con.execute("SELECT * FROM invocations LIMIT 1").fetchall()[0])
    finally:
        con.close()
    found = scan(log_path(store))
    seq = max([applied, *(s for s, _ in found.records)]) + 1
    now = datetime.now(UTC).replace(tzinfo=None)
    ops: list = []
    ids = []
    for i in range(n):
        inv_id = new_invocation_id()
        ids.append(inv_id)
        row = dataclasses.replace(
            template,
            id=inv_id,
            status="ready",
            input=f'"inj{i}"',
            output=None,
            completed_at=None,
            journal_length=1,
            attempt=1,
            created_at=now,
            modified_at=now,
        )
        ops.append(PutInvocation(row, new=True))
        ops.append(
            AppendEntry(
                inv_id, JournalEntry(0, EntryKind.INPUT, None, row.input, None, None, True), now
            )
        )
        if i == n // 2:
            ops.append(SetState("Echo", "k", "bad", '"\ud800"', inv_id, 1, now))
    log = OpLog(log_path(store))
    try:
        log.append(seq, encode_ops(ops))
    finally:
        log.close()
    return ids, ids[n // 2]


def test_a_refused_op_in_a_group_loses_nothing_acknowledged(write_app, dev_server, tmp_path):
    app = write_app(APP)
    srv = dev_server(app)
    with srv.client() as c:
        first = [c.post("/Echo/hi/send", json=f"a{k}").json()["invocationId"] for k in range(10)]
        assert all(r.status_code == 200 for r in attach_all(srv.url, first).values())
        acked = [c.post("/Echo/hi/send", json=f"b{k}") for k in range(20)]
    assert all(r.status_code == 202 for r in acked)
    srv.kill()  # kill -9: the last groups may be in the log only
    injected, poisoned = _inject_group_with_a_refused_op(srv.store, 6)
    srv.start()
    ids = first + [r.json()["invocationId"] for r in acked] + injected
    done = attach_all(srv.url, [i for i in ids if i != poisoned])
    assert all(r.status_code == 200 for r in done.values()), {
        i: r.text for i, r in done.items() if r.status_code != 200
    }
    body = status_of(srv, poisoned)
    assert body["status"] == "paused" and "entry 1" in body["last_error"], body
    assert "SetState refused by the store" in body["last_error"]
    assert f"write refused: invocation {poisoned} entry 1" in srv.log()
    srv.kill()  # and once more: a kill -9 after the recovery loses nothing either
    srv.start()
    done = attach_all(srv.url, [i for i in ids if i != poisoned])
    assert all(r.status_code == 200 for r in done.values())
    assert status_of(srv, poisoned)["status"] == "paused"
    r = httpx.post(
        f"{srv.admin_url}/api/sql", json={"sql": "SELECT invocation_id FROM refused_writes"}
    )
    assert r.json()["rows"] == [[poisoned]]


# -- a full disk


@contextlib.contextmanager
def small_disk(size_mb: int):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; this run is not root")
    where = Path(tempfile.mkdtemp(prefix="durable-full-"))
    out = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}M", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip()}): no small disk to fill")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill(path: Path) -> None:
    """Write to ``path`` until the disk is full (again: freed pages are taken back)."""
    with open(path, "ab", buffering=0) as f:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 512):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)


def health(srv) -> dict:
    return httpx.get(f"{srv.admin_url}/health", timeout=5).json()


def test_a_full_disk_degrades_the_store_and_it_resumes_by_itself(write_app, dev_server):
    app = write_app(APP)
    with small_disk(24) as disk:
        srv = dev_server(app, store=disk / "durable.duckdb")
        filler = disk / "filler"
        acked: list[str] = []
        refused: list[httpx.Response] = []
        with httpx.Client(base_url=srv.url, timeout=3) as c:
            for k in range(20):
                acked.append(c.post("/Echo/hi/send", json=f"a{k}").json()["invocationId"])
            fill(filler)
            deadline = time.monotonic() + 15
            k = 0
            while not refused and time.monotonic() < deadline:
                k += 1
                try:
                    r = c.post("/Echo/hi/send", json=f"f{k}")
                except httpx.TimeoutException:  # waits for the disk: not acknowledged
                    continue
                if r.status_code == 202:
                    acked.append(r.json()["invocationId"])
                else:
                    refused.append(r)
                fill(filler)
        assert refused, "the full disk was never noticed"
        r = refused[0]
        assert r.status_code == 503 and r.json()["code"] == 503, r.text
        assert "disk" in r.json()["message"] and "free" in r.json()["message"], r.text
        h = health(srv)
        assert h["status"] == "degraded" and "free" in h["reason"], h
        assert "store degraded, new requests get 503" in srv.log()
        page = httpx.get(f"{srv.admin_url}/invocations", timeout=10)  # 200, or 503 if it reads
        assert page.status_code in (200, 503) and "Store degraded" in page.text, page.text
        filler.unlink()  # space again: it resumes by itself
        deadline = time.monotonic() + 15
        while health(srv)["status"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert health(srv)["status"] == "ok", srv.log()
        assert "the store takes writes again" in srv.log()
        with srv.client() as c:
            after = c.post("/Echo/hi/send", json="after")
            assert after.status_code == 202
            acked.append(after.json()["invocationId"])
        srv.stop()
        srv.start()
        done = attach_all(srv.url, acked)
        assert all(r.status_code == 200 for r in done.values()), {
            i: r.text for i, r in done.items() if r.status_code != 200
        }
        srv.stop()


# -- a damaged operation log


_CRASHER = textwrap.dedent(
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


def durable(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "durable.devtool.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def dev_once(app: Path, store: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """`durable dev` that is expected to exit at start."""
    return durable(
        "dev",
        str(app),
        "--port",
        str(free_port()),
        "--admin-port",
        str(free_port()),
        "--store",
        str(store),
        "--no-reload",
        cwd=cwd,
    )


def test_a_flipped_byte_mid_log_stops_the_start_check_shows_it_repair_loses_one(
    write_app, dev_server, tmp_path
):
    app = write_app(APP)
    store = tmp_path / "s" / "durable.duckdb"
    store.parent.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", _CRASHER, str(store), "6"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    data = bytearray(Path(log_path(str(store))).read_bytes())
    pos = 0
    for _ in range(2):  # to the third record
        pos += 16 + int.from_bytes(data[pos : pos + 4], "little")
    data[pos + 20] ^= 0x01
    Path(log_path(str(store))).write_bytes(data)

    r = dev_once(app, store, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert f"is damaged: 137 bad bytes at offset {pos} hold group 3" in r.stderr, r.stderr
    assert "3 intact records" in r.stderr

    r = durable("store", "check", "--store", str(store), cwd=tmp_path)
    assert r.returncode == 1
    assert f"damaged  137 bytes at offset {pos}: group(s) 3 cannot be read" in r.stdout, r.stdout
    assert "loses group(s) 3" in r.stdout

    r = durable("store", "repair", "--store", str(store), "--yes", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    srv = dev_server(app, store=store)
    q = httpx.post(
        f"{srv.admin_url}/api/sql",
        json={"sql": "SELECT name FROM state WHERE service = 'S' ORDER BY name"},
    )
    assert [row[0] for row in q.json()["rows"]] == ["n0", "n1", "n3", "n4", "n5"]


# -- store files that cannot be opened: one line, exit 1


def _good_store(path: Path) -> None:
    code = textwrap.dedent(
        """
        import asyncio, sys
        from datetime import datetime
        from durable.devtool.store import Store
        from durable.devtool.store.ops import SetState

        async def main(path):
            store = Store.open(path)
            for i in range(30):
                await store.write([SetState("S", "k", f"n{i}", "x" * 3000, None, None, datetime(2026, 1, 1))])
            await store.flush()
            store.close()

        asyncio.run(main(sys.argv[1]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def _zeroed(path: Path) -> None:
    _good_store(path)
    with open(path, "r+b") as f:
        f.write(b"\0" * 4096)


def _text(path: Path) -> None:
    path.write_text("not a store\n" * 50)


def _half(path: Path) -> None:
    _good_store(path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _wal(path: Path) -> None:
    _good_store(path)
    con = duckdb.connect(str(path))
    con.execute("SET checkpoint_threshold = '1GB'")
    con.execute("INSERT INTO state VALUES ('S', 'k', 'w', '1')")
    data = bytearray(Path(str(path) + ".wal").read_bytes())
    con.close()  # (this checkpoints: the WAL bytes read above are written back below)
    for i in range(len(data) // 3, len(data) // 3 + 40):
        data[i] ^= 0xFF
    Path(str(path) + ".wal").write_bytes(data)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_zeroed, "its header is zeroed"),
        (_text, "is not a durable store: it holds text"),
        (_half, "is damaged: the file has"),
        (_wal, "write-ahead log"),
    ],
    ids=["zeroed-header", "text-file", "cut-to-half", "garbage-wal"],
)
def test_a_store_that_cannot_be_opened_says_why_in_one_line(write_app, tmp_path, make, words):
    app = write_app(APP)
    store = tmp_path / "s" / "durable.duckdb"
    store.parent.mkdir()
    make(store)
    r = dev_once(app, store, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and words in errors[0], r.stderr
    # and offline commands say the same, in one line
    r = durable("sql", "SELECT 1", "--store", str(store), cwd=tmp_path)
    text = " ".join(r.stderr.split())  # the CLI's console wraps long lines
    assert r.returncode == 1 and text.startswith("error: ") and words in text, r.stderr
    assert text.count("error:") == 1 and "Traceback" not in text


def test_a_store_on_a_read_only_disk_says_so(write_app, tmp_path):
    app = write_app(APP)
    with small_disk(8) as disk:
        _good_store(disk / "durable.duckdb")
        out = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True)
        if out.returncode != 0:
            pytest.skip("cannot remount the tmpfs read-only here")
        r = dev_once(app, disk / "durable.duckdb", tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "read-only file system" in errors[0], r.stderr


def test_a_store_without_permission_says_so(write_app, tmp_path):
    if os.geteuid() == 0:
        pytest.skip(
            "this run is root, which ignores file permissions; the read-only disk test "
            "covers a store that cannot be written"
        )
    app = write_app(APP)
    folder = tmp_path / "locked"
    folder.mkdir()
    _good_store(folder / "durable.duckdb")
    folder.chmod(0o500)
    (folder / "durable.duckdb").chmod(0o400)
    try:
        r = dev_once(app, folder / "durable.duckdb", tmp_path)
    finally:
        folder.chmod(0o700)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "permission" in errors[0], r.stderr
