"""RC1: recovery time, from a runtime's spawn to the first call served.

A store with a large history and a set of active invocations, left by a ``kill -9``:

- history: HISTORY finished invocations built with DuckDB SQL (D1's builder), each with
  JOURNAL_PER journal entries (input, runs, output), as a long-used store has;
- active: a runtime on that store gets ACTIVE sends: 40% ``Sleeper/sleep`` of one hour
  (sleeping), 40% ``Waiter/wait`` (suspended on an awakeable nobody resolves), 20%
  ``Recovery/twenty`` (20 steps with 50 ms sleeps: running when the runtime is killed,
  ready to run again after); once the waiters have suspended, ``kill -9`` of the runtime.

Then a new runtime starts on that store; the time is from its spawn to the first
``POST /Ping/ping`` answered 200 (the worker has said Hello and the ingress serves;
polled every 5 ms). The same on an empty store is the run's baseline. Beside them: the
runtime's own "ready in" (from its start, after the Python imports), the CPU the runtime
and its worker had used by then (on a busy machine the wall time stretches, this much
less), and the statuses of the active invocations the new runtime found. Target: <= 1 s
on the loaded store.
"""

from __future__ import annotations

import asyncio
import time

import duckdb

from .d1 import build_store
from .harness import (
    BenchError,
    ErrorLog,
    Outcome,
    Runtime,
    Settings,
    admin_sql,
    bytecode_env,
    closed_loop,
    make_client,
    send,
    workspace,
)

HISTORY = 100_000
JOURNAL_PER = 5
ACTIVE = 1_000
TARGET_S = 1.0


def add_journal(path, per: int = JOURNAL_PER) -> int:
    """Give every invocation of the store ``per`` completed journal entries."""
    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(
            f"""
            INSERT INTO journal
            SELECT i.id, e.idx,
                CASE WHEN e.idx = 0 THEN 'input' WHEN e.idx = {per - 1} THEN 'output'
                     ELSE 'run' END,
                CASE WHEN e.idx BETWEEN 1 AND {per - 2} THEN 'step' || e.idx END,
                NULL, '1', NULL, NULL, true, i.created_at, i.created_at
            FROM invocations i, range({per}) e(idx)
            """
        )
        con.execute("CHECKPOINT")
        return con.execute("SELECT count(*) FROM journal").fetchone()[0]
    finally:
        con.close()


async def _empty(settings: Settings, out: Outcome, env: dict[str, str]) -> None:
    async with workspace(settings, "RC1-empty") as wd:
        rt = Runtime(wd, name="empty", env=env)
        try:
            rt.spawn()
            out.metrics["empty_first_call_s"] = await rt.first_call()
            out.metrics["empty_cpu_s"] = rt.cpu()
            out.metrics["empty_logged_ready_s"] = rt.logged_ready_s()
        finally:
            rt.stop()


async def _make_active(rt: Runtime, settings: Settings, active: int, errors: ErrorLog) -> None:
    sleeps = active * 2 // 5
    waits = active * 2 // 5
    ready = active - sleeps - waits
    plan = (
        [("/Sleeper/sleep", 3_600_000)] * sleeps
        + [("/Waiter/wait", None)] * waits
        + [("/Recovery/twenty", 0)] * ready
    )

    async with make_client(rt.url, 32, settings.client) as client:

        async def one(i: int) -> None:
            path, arg = plan[i]
            await send(client, path, arg)

        _lat, _wall = await closed_loop(len(plan), 32, one, errors)
    await asyncio.sleep(1.5)  # the waiters suspend after 1 s


async def _loaded(settings: Settings, out: Outcome, env: dict[str, str]) -> None:
    history = settings.n(HISTORY, 20_000)
    active = settings.n(ACTIVE, 300)
    async with workspace(settings, "RC1-loaded") as wd:
        store = wd / "store.duckdb"
        t0 = time.perf_counter()
        build_store(store, history)
        journal_rows = add_journal(store)
        out.metrics["build_s"] = time.perf_counter() - t0
        errors = ErrorLog()
        before = Runtime(wd, store=store, name="before-crash", env=env)
        after = Runtime(wd, store=store, name="after-crash", env=env)
        try:
            await before.start(timeout=120)
            await _make_active(before, settings, active, errors)
            if not before.alive():
                raise BenchError("the runtime died before the kill:\n" + before.log_tail())
            before.kill9()
            after.spawn()
            out.metrics["loaded_first_call_s"] = await after.first_call()
            out.metrics["loaded_cpu_s"] = after.cpu()
            out.metrics["loaded_logged_ready_s"] = after.logged_ready_s()
            rows = await admin_sql(
                after.admin_url,
                "SELECT status, count(*) FROM invocations WHERE status NOT IN "
                "('completed', 'failed', 'killed', 'cancelled') GROUP BY ALL ORDER BY ALL",
            )
            found = {status: n for status, n in rows}
            out.notes.append(
                "active after the restart: " + ", ".join(f"{n} {s}" for s, n in found.items())
            )
            out.metrics["active_found"] = sum(found.values())
        finally:
            before.stop()
            after.stop()
        out.metrics.update(
            {
                "history": history,
                "journal_rows": journal_rows,
                "active": active,
                "store_mib": store.stat().st_size / (1024 * 1024),
            }
        )
        out.errors += errors.lines("sends: ")


async def run(settings: Settings) -> Outcome:
    out = Outcome()
    env = bytecode_env()
    await _empty(settings, out, env)
    await _loaded(settings, out, env)
    return out
