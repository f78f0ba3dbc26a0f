"""D1: the dashboard's invocations list over a store of 1,000,000 invocations.

The store is built directly with DuckDB SQL (the schema's migrations, then one
``INSERT ... SELECT FROM range(N)`` into ``invocations``): time-ordered ids (``inv_`` +
26 lower-case Crockford base32 characters: 48 bits of milliseconds, then 80
pseudo-random bits, one invocation every 500 ms of the past), five services of the
bench app, three handlers, keys on the objects, finished statuses (completed, a few
failed, killed and cancelled: a runtime keeps unfinished ones in memory), and the
``attrs`` JSON every row carries. Then a runtime starts on it and the dashboard is
asked, 20 times each (after 3 warm-up requests), for:

- the first page (``GET /invocations``, the full HTML page, 50 rows);
- a deep page (``?after=`` the id 900,000 rows down: keyset paging, no OFFSET);
- the live poll of the first page (the ``HX-Request`` fragment);
- the first page filtered by service and by status;
- the lazily loaded total and status counts (``/invocations/count``).

Figures: the server time of each (the ``Server-Timing: app;dur=`` header the dashboard
adds: from request to response start, in the runtime) p50/p99, and the client time on
127.0.0.1 p50; store build time and size. Target: the list pages p99 < 200 ms.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import httpx

from .harness import BenchError, Outcome, Runtime, Settings, percentile, workspace

ROWS = 1_000_000
WARMUP = 3
REPEAT = 20
TARGET_MS = 200.0
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

SERVICES = [
    ("Steps", "service", ["ten"]),
    ("Counter", "object", ["add", "get"]),
    ("Sleeper", "service", ["sleep"]),
    ("Waiter", "service", ["wait"]),
    ("Recovery", "service", ["twenty"]),
]


def _id_sql(ms: str) -> str:
    """SQL for an invocation id: 10 chars of the millisecond time, 16 pseudo-random."""
    time_chars = [
        f"substr('{ALPHABET}', (({ms} >> {5 * (9 - k)}) & 31)::INTEGER + 1, 1)" for k in range(10)
    ]
    rand_chars = [f"substr('{ALPHABET}', floor(random() * 32)::INTEGER + 1, 1)" for _k in range(16)]
    return "'inv_' || " + " || ".join(time_chars + rand_chars)


def build_store(path: Path, rows: int = ROWS) -> float:
    """Create a store with ``rows`` finished invocations; returns seconds taken."""
    from durable.devtool.store import connect_config
    from durable.devtool.store.schema import migrate

    t0 = time.perf_counter()
    con = duckdb.connect(str(path), config=connect_config)
    try:
        migrate(con)
        con.execute("SET enable_progress_bar = false")
        now_ms = int(time.time() * 1000)
        start_ms = now_ms - rows * 500
        services = "[" + ", ".join(f"'{s}'" for s, _k, _h in SERVICES) + "]"
        kinds = "[" + ", ".join(f"'{k}'" for _s, k, _h in SERVICES) + "]"
        handlers = (
            "["
            + ", ".join("[" + ", ".join(f"'{h}'" for h in hs) + "]" for _s, _k, hs in SERVICES)
            + "]"
        )
        con.execute(
            f"""
            INSERT INTO invocations
            WITH base AS (
                SELECT i,
                    {start_ms}::BIGINT + i * 500 AS ms,
                    (i % {len(SERVICES)})::INTEGER + 1 AS s,
                    hash(i, 'status') % 1000 AS roll
                FROM range({rows}) t(i)
            ),
            shaped AS (
                SELECT i, ms,
                    {services}[s] AS service,
                    {kinds}[s] AS service_kind,
                    {handlers}[s][(i % len({handlers}[s]))::INTEGER + 1] AS handler,
                    CASE WHEN roll < 20 THEN 'failed' WHEN roll < 970 THEN 'completed'
                         WHEN roll < 990 THEN 'killed' ELSE 'cancelled' END AS status,
                    roll,
                    make_timestamp(ms * 1000) AS created_at
                FROM base
            )
            SELECT
                {_id_sql("ms")} AS id,
                service, handler,
                CASE WHEN service_kind = 'object' THEN 'key-' || (i % 1000)::VARCHAR END AS key,
                status,
                created_at,
                created_at + INTERVAL 15 MILLISECOND AS modified_at,
                json_object(
                    'service_kind', service_kind,
                    'handler_kind', CASE WHEN service_kind = 'object' THEN 'exclusive' ELSE 'service' END,
                    'input', i::VARCHAR,
                    'headers', '{{}}',
                    'idempotency_key', NULL,
                    'output', CASE WHEN status = 'completed' THEN '45' END,
                    'failure_code', CASE WHEN status = 'failed' THEN 500
                                         WHEN status = 'killed' THEN 409
                                         WHEN status = 'cancelled' THEN 409 END,
                    'failure_message', CASE WHEN status = 'failed' THEN 'boom'
                                            WHEN status <> 'completed' THEN status END,
                    'attempt', 1,
                    'next_retry_at', NULL,
                    'last_error', NULL,
                    'last_error_stack', NULL,
                    'waiting_on', NULL,
                    'parent_id', NULL,
                    'parent_entry', NULL,
                    'restarted_from', NULL,
                    'scheduled_at', NULL,
                    'cancel_requested', false,
                    'journal_length', 12,
                    'completed_at', strftime(created_at + INTERVAL 15 MILLISECOND, '%Y-%m-%dT%H:%M:%S.%f')
                )::VARCHAR AS attrs
            FROM shaped
            ORDER BY ms
            """
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return time.perf_counter() - t0


def _deep_cursor(path: Path, depth: int) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "SELECT id FROM invocations ORDER BY id DESC LIMIT 1 OFFSET ?", [depth]
        ).fetchall()[0][0]
    finally:
        con.close()


def _time(
    client: httpx.Client, url: str, headers: dict[str, str] | None = None
) -> tuple[list[float], list[float]]:
    """(server ms, client ms) of REPEAT requests after WARMUP."""
    server, wall = [], []
    for n in range(WARMUP + REPEAT):
        t0 = time.perf_counter()
        r = client.get(url, headers=headers)
        took = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            raise BenchError(f"GET {url}: {r.status_code} {r.text[:200]}")
        timing = r.headers.get("server-timing", "")
        if not timing.startswith("app;dur="):
            raise BenchError(f"GET {url}: no Server-Timing header")
        if n >= WARMUP:
            server.append(float(timing.split("dur=")[1].split(",")[0]))
            wall.append(took)
    return server, wall


async def run(settings: Settings) -> Outcome:
    rows = settings.n(ROWS, 200_000)
    out = Outcome()
    async with workspace(settings, "D1") as wd:
        store = wd / "store.duckdb"
        build_s = build_store(store, rows)
        deep = _deep_cursor(store, int(rows * 0.9))
        rt = Runtime(wd, store=store, name="d1")
        try:
            await rt.start(timeout=120, admin=True)
            admin = f"http://127.0.0.1:{rt.admin_port}"
            cases = {
                "first": ("/invocations", None),
                "deep": (f"/invocations?after={deep}", None),
                "poll": ("/invocations", {"HX-Request": "true"}),
                "service": ("/invocations?service=Counter", None),
                "status": ("/invocations?status=killed", None),
                "count": ("/invocations/count", {"HX-Request": "true"}),
            }
            with httpx.Client(base_url=admin, timeout=60) as client:
                page = client.get("/invocations")
                if page.text.count('<tr data-id="') != 50:
                    raise BenchError("the first page does not show 50 invocations")
                for name, (url, headers) in cases.items():
                    server, wall = _time(client, url, headers)
                    out.metrics[f"{name}_p50_ms"] = percentile(server, 50)
                    out.metrics[f"{name}_p99_ms"] = percentile(server, 99)
                    out.metrics[f"{name}_client_p50_ms"] = percentile(wall, 50)
        finally:
            rt.stop()
        out.metrics.update(
            {
                "rows": rows,
                "build_s": build_s,
                "store_mib": store.stat().st_size / (1024 * 1024),
                "ready_s": rt.ready_s,
            }
        )
    return out
