"""baseline: bare DuckDB on the same disk, in the same run.

- commit p50: 200 single-row INSERT + COMMIT (explicit BEGIN), one at a time;
- group commit: 200 appender batches of 32 rows, each BEGIN / append_row x32 / flush /
  COMMIT, as rows/s;
- fdatasync p50 of a 64-byte append to a plain file (for reference).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .harness import Outcome, Settings, percentile, workspace


def _measure(folder: Path, settings: Settings) -> Outcome:
    import duckdb

    n_commits = 200  # cheap: the same counts in --quick, the ratios lean on these
    n_batches = 200
    batch = 32
    con = duckdb.connect(
        str(folder / "baseline.duckdb"), config={"autoinstall_known_extensions": False}
    )
    try:
        con.execute("CREATE TABLE one (k BIGINT, inv VARCHAR, payload VARCHAR)")
        con.execute("CREATE TABLE grp (k BIGINT, inv VARCHAR, payload VARCHAR)")
        payload = '{"value": 12345}'

        # single-row INSERT + COMMIT (10 warm-up rows first)
        lat: list[float] = []
        for i in range(n_commits + 10):
            t0 = time.perf_counter()
            con.execute("BEGIN")
            con.execute("INSERT INTO one VALUES (?, ?, ?)", [i, "inv_bench", payload])
            con.execute("COMMIT")
            if i >= 10:
                lat.append(time.perf_counter() - t0)

        # appender batches of 32 rows, one commit per batch (2 warm-up batches first)
        app = con.appender("grp")
        blat: list[float] = []
        k = 0
        t_all = 0.0
        for b in range(n_batches + 2):
            t0 = time.perf_counter()
            con.execute("BEGIN")
            for _ in range(batch):
                app.append_row(k, "inv_bench", payload)
                k += 1
            app.flush()
            con.execute("COMMIT")
            dt = time.perf_counter() - t0
            if b >= 2:
                blat.append(dt)
                t_all += dt
        rows = con.execute("SELECT count(*) FROM grp").fetchone()[0]
        if rows != k:
            raise RuntimeError(f"appender wrote {rows} rows, expected {k}")
    finally:
        con.close()

    # fdatasync of a plain file on the same disk
    fs: list[float] = []
    fd = os.open(folder / "fsync.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for _ in range(100):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 64)
            os.fdatasync(fd)
            fs.append(time.perf_counter() - t0)
    finally:
        os.close(fd)

    return Outcome(
        metrics={
            "commit_p50_ms": percentile(lat, 50) * 1e3,
            "commit_p99_ms": percentile(lat, 99) * 1e3,
            "rows_per_s": n_batches * batch / t_all,
            "batch_p50_ms": percentile(blat, 50) * 1e3,
            "fdatasync_p50_ms": percentile(fs, 50) * 1e3,
        }
    )


async def run(settings: Settings) -> Outcome:
    import asyncio

    async with workspace(settings, "baseline") as folder:
        return await asyncio.to_thread(_measure, folder, settings)
