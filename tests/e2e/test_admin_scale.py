"""The admin API pages a store of 1,000,000 invocations fast, at any depth.

The 200 ms target is measured by ``python -m bench d1`` (medians on a quiet machine); here
the budget only catches a page that scans the whole store (an OFFSET, a lost index), with
room for a machine busy with other work, where the best of three still varies by 3-5x.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import httpx
import pytest
from durable.devtool.store.schema import migrate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

N = 1_000_000
BUDGET_S = 1.0

APP = """
from durable import Service, Context

greeter = Service("Greeter")

@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    return name
"""

_B32 = "0123456789abcdefghjkmnpqrstvwxyz"


def build_store(path: Path) -> None:
    """N invocations with time-ordered ids (as new_invocation_id makes them), in SQL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    migrate(con)
    time_part = (
        f"list_reduce(list_transform(range(9, -1, -1), lambda k: substr('{_B32}', "
        "(((ms >> (5 * k)) & 31) + 1)::INTEGER, 1)), lambda a, b: a || b)"
    )
    rand_part = (
        f"list_reduce(list_transform(range(16), lambda k: substr('{_B32}', "
        "(((hash(i) >> (4 * k)) & 31) + 1)::INTEGER, 1)), lambda a, b: a || b)"
    )
    con.execute(
        f"""
        INSERT INTO invocations
        SELECT 'inv_' || {time_part} || {rand_part},
            CASE i % 3 WHEN 0 THEN 'Greeter' WHEN 1 THEN 'Counter' ELSE 'Orders' END,
            CASE i % 2 WHEN 0 THEN 'greet' ELSE 'add' END,
            CASE WHEN i % 3 = 0 THEN NULL ELSE 'key-' || (i % 5000) END,
            CASE WHEN i % 100 = 7 THEN 'killed' WHEN i % 200 = 3 THEN 'cancelled'
                 ELSE 'completed' END,
            make_timestamp(ms * 1000), make_timestamp(ms * 1000),
            '{{"service_kind":"service","handler_kind":"service","input":"\\"x\\"",'
            || '"headers":"{{}}","idempotency_key":null,"output":"\\"x\\"","failure_code":null,'
            || '"failure_message":null,"attempt":1,"next_retry_at":null,"last_error":null,'
            || '"last_error_stack":null,"waiting_on":null,"parent_id":null,"parent_entry":null,'
            || '"restarted_from":null,"scheduled_at":null,"cancel_requested":false,'
            || '"journal_length":2,"completed_at":null}}'
        FROM (SELECT i, 1700000000000 + i * 7 AS ms FROM range({N}) t(i))
        """
    )
    con.execute("CHECKPOINT")
    con.close()


def timed(client: httpx.Client, path: str, **params) -> tuple[float, dict]:
    best, body = 1e9, {}
    for _ in range(3):  # the best of three: the machine may be busy with other work
        t0 = time.perf_counter()
        r = client.get(path, params=params)
        best = min(best, time.perf_counter() - t0)
        assert r.status_code == 200, r.text
        body = r.json()
    return best, body


def test_a_million_invocations_page_fast(write_app, dev_server, tmp_path: Path):
    store = tmp_path / "store" / "durable.duckdb"
    build_store(store)
    srv = dev_server(write_app(APP), store=store)
    with httpx.Client(base_url=srv.admin_url, timeout=30) as c:
        took, first = timed(c, "/api/invocations", limit=50, count=1)
        assert first["total"] == N and len(first["invocations"]) == 50
        assert took < BUDGET_S, f"first page with count: {took * 1000:.0f} ms"
        ids = [i["id"] for i in first["invocations"]]
        assert ids == sorted(ids, reverse=True)
        cursor = first["next"]
        for page in range(5):  # walk on with the keyset cursor
            took, body = timed(c, "/api/invocations", limit=50, after=cursor)
            assert took < BUDGET_S, f"page {page + 2}: {took * 1000:.0f} ms"
            assert body["invocations"][0]["id"] < cursor
            cursor = body["next"]
        middle = c.post(
            "/api/sql",
            json={"sql": "select id from invocations order by id limit 1 offset 500000"},
        ).json()["rows"][0][0]
        for params in (
            {"after": middle},
            {"before": middle},
            {"status": "killed", "count": 1},
            {"service": "Counter", "handler": "add", "key": "key-7"},
            {"id": middle[-6:]},  # text inside ids: a scan
            {"id": middle[:20]},  # a prefix: a range
            {"q": middle[:20]},  # a search for an id prefix: the same range
            {"since": "2023-11-14T22:13:20Z", "until": "2023-11-15T00:00:00Z"},
        ):
            took, body = timed(c, "/api/invocations", limit=50, **params)
            assert took < BUDGET_S, f"{params}: {took * 1000:.0f} ms"
            assert body["invocations"], params
        assert body["invocations"][0]["created_at"].startswith("2023-11-14T23")
        # a text search reads every row's JSON, but for about a second at most
        took, body = timed(c, "/api/invocations", limit=50, q="no such text")
        assert took < 10 * BUDGET_S + 1.0, f"search: {took * 1000:.0f} ms"
        assert body["invocations"] == [] and ("searched_since" in body) == ("note" in body)
        took, one = timed(c, f"/api/invocations/{middle}")
        assert one["id"] == middle and took < BUDGET_S
