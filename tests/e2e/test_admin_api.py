"""The admin API over real HTTP against a real `durable dev` process and DuckDB file."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

APP = """
import os
from datetime import timedelta
from durable import (Service, VirtualObject, Workflow, Context, ObjectContext,
                     ObjectSharedContext, WorkflowContext, RetryPolicy, TerminalError)

def note(what):
    with open(os.environ["EFFECTS_FILE"], "a") as f:
        f.write(what + "\\n")
    return what

greeter = Service("Greeter")

@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    return await ctx.run("greeting", note, f"Hello {name}!")

@greeter.handler()
async def slow(ctx: Context) -> str:
    import time
    return await ctx.run("slow", lambda: time.sleep(2) or "done")

orders = VirtualObject("Order")

@orders.handler()
async def process(ctx: ObjectContext, n: int) -> dict:
    count = await ctx.get("count", type_hint=int) or 0
    ctx.set("count", count + n)
    await ctx.run("charge", note, f"charge {n}")
    aw_id, promise = ctx.awakeable()
    ctx.set("awakeable", aw_id)
    try:
        got = await promise
    except TerminalError as e:
        ctx.set("status", f"REJECTED {e.message}")
        raise
    ctx.set("status", "DONE")
    return {"got": got, "count": count + n}

@orders.handler(kind="shared")
async def peek(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count", type_hint=int) or 0

signup = Workflow("Signup")

@signup.main()
async def run(ctx: WorkflowContext, email: str) -> str:
    ctx.set("email", email)
    return await ctx.promise("confirmed").value()

flaky = Service("Flaky", retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50),
                                                  max_interval=timedelta(milliseconds=50),
                                                  max_attempts=2))

@flaky.handler()
async def boom(ctx: Context) -> None:
    raise ValueError("boom on purpose")
"""


@pytest.fixture
def srv(write_app, dev_server, tmp_path: Path):
    return dev_server(
        write_app(APP),
        extra=["--suspend-after", "0.1"],
        env={"EFFECTS_FILE": str(tmp_path / "effects.txt")},
    )


def api(srv, path: str, **params) -> httpx.Response:
    return httpx.get(srv.admin_url + path, params=params, timeout=30)


def post(srv, path: str, body=None, **kw) -> httpx.Response:
    return httpx.post(srv.admin_url + path, json=body, timeout=30, **kw)


def wait_status(srv, inv: str, *statuses: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = api(srv, f"/api/invocations/{inv}").json()
        if body.get("status") in statuses or time.monotonic() > deadline:
            assert body.get("status") in statuses, body
            return body
        time.sleep(0.02)


def send(srv, path: str, body) -> str:
    r = httpx.post(srv.url + path + "/send", json=body, timeout=30)
    assert r.status_code == 202, r.text
    return r.json()["invocationId"]


def test_list_filters_paging_count_and_live_status(srv):
    greets = [send(srv, "/Greeter/greet", f"n{i}") for i in range(7)]
    o1 = send(srv, "/Order/o1/process", 1)
    o2 = send(srv, "/Order/o2/process", 2)
    wf = send(srv, "/Signup/w1/run", "a@b")
    bad = send(srv, "/Flaky/boom", None)
    for inv in (o1, o2, wf):
        wait_status(srv, inv, "suspended")
    wait_status(srv, bad, "paused")
    for g in greets:
        wait_status(srv, g, "completed")
    everything = [bad, wf, o2, o1, *reversed(greets)]  # newest first

    # keyset paging: pages of 3, each with a cursor; no duplicates, none missing
    seen, after = [], None
    while True:
        page = api(srv, "/api/invocations", limit=3, after=after or "", count=1).json()
        assert page["total"] == 11
        seen += [i["id"] for i in page["invocations"]]
        after = page["next"]
        if after is None:
            break
    assert seen == everything
    # the page before a cursor (newer), still newest first
    back = api(srv, "/api/invocations", limit=3, before=everything[5]).json()
    assert [i["id"] for i in back["invocations"]] == everything[2:5]
    asc = api(srv, "/api/invocations", order="asc", limit=2).json()["invocations"]
    assert [i["id"] for i in asc] == list(reversed(everything))[:2]

    def ids(**params) -> list[str]:
        return [i["id"] for i in api(srv, "/api/invocations", **params).json()["invocations"]]

    suspended = api(srv, "/api/invocations", status="suspended", count=1).json()
    assert suspended["total"] == 3
    by_id = {i["id"]: i for i in suspended["invocations"]}
    assert set(by_id) == {o1, o2, wf}
    assert by_id[o1]["waits_on"].startswith("awakeable awk_")
    assert by_id[o1]["waiting"][0]["kind"] == "awakeable"
    assert by_id[wf]["waits_on"] == "promise 'confirmed'"
    assert ids(status="paused") == [bad]
    assert api(srv, "/api/invocations", status="paused").json()["invocations"][0]["last_error"]
    assert ids(status="completed,paused", service="Flaky") == [bad]
    assert ids(service="Greeter") == list(reversed(greets))
    assert ids(service="Order", key="o2") == [o2]
    assert ids(handler="run") == [wf]
    assert ids(q=o1[-8:]) == [o1]
    assert len(ids(since="1h")) == 11
    assert ids(until="2000-01-01T00:00:00Z") == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert ids(since=future) == []
    for params, text in [
        ({"status": "sleeping"}, "unknown status"),
        ({"since": "yesterday"}, "bad time"),
        ({"limit": "x"}, "limit must be an integer"),
        ({"order": "up"}, "order must be"),
    ]:
        r = api(srv, "/api/invocations", **params)
        assert r.status_code == 400 and text in r.json()["message"], r.text


def test_running_is_the_live_status_from_memory(srv):
    inv = send(srv, "/Greeter/slow", None)
    wait_status(srv, inv, "running")
    page = api(srv, "/api/invocations", status="running", count=1).json()
    assert [i["id"] for i in page["invocations"]] == [inv] and page["total"] == 1
    assert api(srv, "/api/invocations", status="ready").json()["invocations"] == []
    stored = post(srv, "/api/sql", {"sql": f"select status from invocations where id = '{inv}'"})
    assert stored.json()["rows"] == [["ready"]]  # the store keeps the last durable status
    wait_status(srv, inv, "completed")
    assert api(srv, "/api/invocations", status="running").json()["invocations"] == []


def test_show_has_request_journal_timings_waits_and_state(srv):
    o1 = send(srv, "/Order/o1/process", 5)
    inv = wait_status(srv, o1, "suspended")
    assert inv["request"]["body"] == 5
    assert "user-agent" in inv["request"]["headers"]
    assert inv["attempt"] == 1 and inv["service"] == "Order" and inv["key"] == "o1"
    kinds = [(e["index"], e["kind"], e["name"]) for e in inv["journal"]]
    assert kinds[:5] == [
        (0, "input", None),
        (1, "get_state", "count"),
        (2, "set_state", "count"),
        (3, "run", "charge"),
        (4, "awakeable", None),
    ]
    j = inv["journal"]
    assert j[3]["result"] == "charge 5" and j[3]["completed"]
    assert j[4]["completed"] is False and j[4]["payload"]["id"].startswith("awk_")
    assert all(e["created_at"].endswith("Z") for e in j)
    assert [e["state"] for e in j[:4]] == [{}, {}, {"count": 5}, {"count": 5}]
    assert j[5]["state"] == {"count": 5, "awakeable": j[4]["payload"]["id"]}
    assert inv["waiting"] == [
        {
            "index": 4,
            "kind": "awakeable",
            "name": None,
            "what": f"awakeable {j[4]['payload']['id']}",
            "awakeable_id": j[4]["payload"]["id"],
        }
    ]
    r = api(srv, "/api/invocations/inv_00000000000000000000000000")
    assert r.status_code == 404 and r.json() == {
        "code": 404,
        "message": "unknown invocation inv_00000000000000000000000000",
    }
    assert api(srv, "/api/invocations/nope").status_code == 400


def test_actions_refusals_and_errors_are_json(srv):
    g = send(srv, "/Greeter/greet", "x")
    o1 = send(srv, "/Order/o1/process", 1)
    o1b = send(srv, "/Order/o1/process", 2)  # queued behind o1 on the same key
    wait_status(srv, g, "completed")
    wait_status(srv, o1, "suspended")
    assert wait_status(srv, o1b, "pending")["waiting"][0]["kind"] == "key"

    def act(inv: str, action: str) -> httpx.Response:
        return post(srv, f"/api/invocations/{inv}/{action}")

    cases = [
        (act(g, "resume"), 409, "is completed: there is nothing to resume"),
        (act(g, "kill"), 409, "nothing to kill"),
        (act(o1, "purge"), 409, "only finished invocations can be purged"),
        (act(o1, "resume"), 409, "only paused or backing-off"),
        (act(o1b, "pause"), 409, "it has not started"),
        (act("inv_00000000000000000000000000", "cancel"), 404, "unknown invocation"),
        (act("bogus", "cancel"), 400, "malformed invocation id"),
        (act(g, "explode"), 404, "unknown action"),
        (httpx.get(f"{srv.admin_url}/api/invocations/{g}/kill"), 405, "POST"),
        (post(srv, "/api/nothing/here"), 404, "unknown admin API path"),
        (
            post(srv, f"/api/invocations/{o1}/kill", headers={"Origin": "http://evil.example"}),
            403,
            "cross-origin",
        ),
        # DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 is
        # "same origin" for the browser, but its Host header still names evil.example
        (
            post(
                srv,
                f"/api/invocations/{o1}/kill",
                headers={"Host": "evil.example:9070", "Origin": "http://evil.example:9070"},
            ),
            403,
            "Host header names another site",
        ),
        (
            httpx.get(f"{srv.admin_url}/api/invocations", headers={"Host": "evil.example"}),
            403,
            "Host header names another site",
        ),
        (
            post(srv, "/api/sql", {"sql": "select 1"}, headers={"Host": "evil.example"}),
            403,
            "Host header names another site",
        ),
    ]
    for r, status, text in cases:
        assert r.status_code == status, (r.request.url, r.text)
        assert r.json()["code"] == status and text in r.json()["message"], r.text
    assert httpx.get(
        f"{srv.admin_url}/api/invocations", headers={"Host": "localhost:9070"}
    ).is_success
    # a same-origin POST (the dashboard) is allowed
    r = post(srv, f"/api/invocations/{o1}/pause", headers={"Origin": srv.admin_url})
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert act(o1, "resume").json()["status"] == "ready"
    wait_status(srv, o1, "suspended")  # replayed and back waiting on its awakeable
    assert act(o1, "kill").json()["status"] == "killed"
    wait_status(srv, o1b, "suspended")  # the key was released
    assert act(o1b, "cancel").status_code == 200
    wait_status(srv, o1b, "cancelled")
    assert act(g, "purge").json()["status"] == "purged"
    assert api(srv, f"/api/invocations/{g}").status_code == 404
    # the runtime still serves
    assert httpx.post(srv.url + "/Greeter/greet", json="y", timeout=10).json() == "Hello y!"


def test_bulk_actions_over_a_filter(srv):
    orders = [send(srv, f"/Order/k{i}/process", i) for i in range(4)]
    g = send(srv, "/Greeter/greet", "x")
    for o in orders:
        wait_status(srv, o, "suspended")
    wait_status(srv, g, "completed")
    r = post(
        srv,
        "/api/invocations/bulk",
        {"action": "kill", "filter": {"service": "Order"}, "dry_run": True},
    )
    assert r.json()["matched"] == 4 and set(r.json()["ids"]) == set(orders)
    r = post(srv, "/api/invocations/bulk", {"action": "kill", "filter": {"status": ["suspended"]}})
    assert r.status_code == 200, r.text
    assert {d["id"] for d in r.json()["done"]} == set(orders) and r.json()["failed"] == []
    r = post(srv, "/api/invocations/bulk", {"action": "purge", "ids": [*orders, g, "bad-id"]})
    body = r.json()
    assert len(body["done"]) == 5
    assert body["failed"] == [
        {"id": "bad-id", "code": 400, "message": body["failed"][0]["message"]}
    ]
    assert api(srv, "/api/invocations", count=1).json()["total"] == 0
    assert post(srv, "/api/invocations/bulk", {"action": "explode", "ids": []}).status_code == 400


def test_awakeables_and_promises(srv):
    o1 = send(srv, "/Order/o1/process", 1)
    o2 = send(srv, "/Order/o2/process", 2)
    wf = send(srv, "/Signup/w1/run", "a@b")
    for inv in (o1, o2, wf):
        wait_status(srv, inv, "suspended")
    pending = api(srv, "/api/awakeables").json()
    by_inv = {a["invocation_id"]: a for a in pending["awakeables"]}
    assert set(by_inv) == {o1, o2}
    assert by_inv[o1]["service"] == "Order" and by_inv[o1]["key"] == "o1"
    assert by_inv[o1]["status"] == "suspended" and by_inv[o1]["entry_index"] == 4
    assert pending["promises"] == [
        {
            "id": "promise/Signup/w1/confirmed",
            "service": "Signup",
            "key": "w1",
            "name": "confirmed",
            "invocation_id": wf,
            "entry_index": 2,
            "created_at": pending["promises"][0]["created_at"],
            "handler": "run",
            "status": "suspended",
            "schema": None,  # the handler gave no type_hint
        }
    ]
    a1, a2 = by_inv[o1]["id"], by_inv[o2]["id"]
    r = httpx.post(f"{srv.admin_url}/api/awakeables/{a1}/resolve", content=b'{"ok": true}')
    assert r.status_code == 200 and r.json()["invocation_id"] == o1
    assert wait_status(srv, o1, "completed")["output_value"] == {"got": {"ok": True}, "count": 1}
    r = httpx.post(f"{srv.admin_url}/api/awakeables/{a1}/resolve", content=b"1")
    assert r.status_code == 409 and "already completed" in r.json()["message"]
    r = httpx.post(f"{srv.admin_url}/api/awakeables/awk_unknown-awakeable/resolve", content=b"1")
    assert r.status_code == 404
    r = httpx.post(f"{srv.admin_url}/api/awakeables/{a2}/resolve", content=b"{not json")
    assert r.status_code == 400
    r = post(srv, f"/api/awakeables/{a2}/reject", {"message": "out of stock", "code": 410})
    assert r.status_code == 200
    done = wait_status(srv, o2, "failed")
    assert done["failure"] == {"code": 410, "message": "out of stock"}
    assert post(srv, "/api/promises/resolve", {"service": "Signup", "key": "w1"}).status_code == 400
    r = post(
        srv,
        "/api/promises/resolve",
        {"service": "Signup", "key": "w1", "name": "confirmed", "value": "yes"},
    )
    assert r.status_code == 200, r.text
    assert wait_status(srv, wf, "completed")["output_value"] == "yes"
    r = post(
        srv,
        "/api/promises/resolve",
        {"service": "Signup", "key": "w1", "name": "confirmed", "value": "again"},
    )
    assert r.status_code == 409
    assert api(srv, "/api/awakeables").json() == {"awakeables": [], "promises": []}


def test_state_get_set_and_as_of_entry(srv):
    o1 = send(srv, "/Order/o1/process", 3)
    wait_status(srv, o1, "suspended")
    r = post(srv, "/api/state/Order/o1", {"name": "note", "value": {"by": "hand"}})
    assert r.status_code == 200, r.text
    now = api(srv, "/api/state/Order/o1").json()
    assert now["state"]["count"] == 3 and now["state"]["note"] == {"by": "hand"}
    assert api(srv, "/api/state/Order/o1", invocation=o1, entry=1).json()["state"] == {}
    assert api(srv, "/api/state/Order/o1", invocation=o1, entry=2).json()["state"] == {"count": 3}
    assert api(srv, "/api/state/Order").json() == {
        "service": "Order",
        "keys": [{"key": "o1", "entries": 3}],
    }
    assert post(srv, "/api/state/Order/o1", {"name": "note", "clear": True}).status_code == 200
    assert "note" not in api(srv, "/api/state/Order/o1").json()["state"]
    # a key with a slash
    assert post(srv, "/api/state/Order/a%2Fb", {"name": "x", "value": 1}).status_code == 200
    assert api(srv, "/api/state/Order/a%2Fb").json()["state"] == {"x": 1}
    for r, status, text in [
        (post(srv, "/api/state/Greeter/k", {"name": "x", "value": 1}), 400, "is a service"),
        (post(srv, "/api/state/Nope/k", {"name": "x", "value": 1}), 404, "unknown service"),
        (post(srv, "/api/state/Order/o1", {"name": "x"}), 400, "value"),
        (api(srv, "/api/state/Order/o1", invocation=o1, entry=99), 404, "has no journal entry 99"),
        (api(srv, "/api/state/Order/o1", entry=1), 400, "entry needs invocation"),
    ]:
        assert r.status_code == status and text in r.json()["message"], r.text


def test_sql_is_read_only_time_limited_and_capped(srv):
    for i in range(3):
        send(srv, "/Greeter/greet", f"n{i}")
    time.sleep(0.5)
    r = post(srv, "/api/sql", {"sql": "select status, count(*) as n from invocations group by all"})
    assert r.status_code == 200, r.text
    assert r.json()["columns"] == ["status", "n"] and r.json()["rows"] == [["completed", 3]]
    r = post(srv, "/api/sql", {"sql": "select * from range(10)", "limit": 4})
    assert len(r.json()["rows"]) == 4 and r.json()["truncated"] is True
    r = post(srv, "/api/sql", {"sql": "select created_at, attrs from invocation_details limit 1"})
    assert r.status_code == 400  # no such column in the view: a clear DuckDB error
    assert "attrs" in r.json()["message"]
    for sql, text in [
        ("delete from invocations", "DELETE statement"),
        ("drop table journal", "DROP statement"),
        ("insert into state values ('a', 'b', 'c', 'd')", "INSERT statement"),
        ("select 1; delete from journal", "exactly one query"),
        ("attach 'x.db'", "ATTACH statement"),
        ("copy journal to 'out.csv'", "COPY statement"),
        ("select * from read_csv('/etc/passwd')", "read_csv() is not allowed"),
        ("select * from '/etc/passwd'", "looks like a file"),
        ("select getenv('HOME')", "getenv() is not allowed"),
        ("", "empty SQL"),
    ]:
        r = post(srv, "/api/sql", {"sql": sql})
        assert r.status_code == 400 and text in r.json()["message"], (sql, r.text)
    r = post(srv, "/api/sql", {"sql": "select count(*) from range(10000000000000)", "timeout": 0.3})
    assert r.status_code == 400 and "longer than 0.3 s" in r.json()["message"]
    # nothing was changed, and the runtime still writes
    assert httpx.post(srv.url + "/Greeter/greet", json="z", timeout=10).json() == "Hello z!"


def test_services_openapi_and_export(srv, tmp_path: Path):
    body = api(srv, "/api/services").json()
    assert body["ingress_url"] == srv.url
    greeter = next(s for s in body["services"] if s["name"] == "Greeter")
    h = greeter["handlers"][0]
    assert h["input_schema"] == {"type": "string"} and h["output_schema"] == {"type": "string"}
    doc = api(srv, "/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert doc["servers"] == [{"url": srv.url}]
    call = doc["paths"]["/Order/{key}/process"]["post"]
    assert call["requestBody"]["content"]["application/json"]["schema"] == {"type": "integer"}
    assert "202" in doc["paths"]["/Greeter/greet/send"]["post"]["responses"]
    assert "/Signup/{key}/run" in doc["paths"]

    send(srv, "/Greeter/greet", "x")
    time.sleep(0.3)
    tables = api(srv, "/api/export").json()["tables"]
    assert {"invocations", "journal", "state", "state_history", "invocation_details"} <= set(tables)
    r = api(srv, "/api/export/journal")
    assert r.status_code == 200 and r.content[:4] == b"PAR1"
    path = tmp_path / "journal.parquet"
    path.write_bytes(r.content)
    n = duckdb.sql(f"select count(*) from '{path}'").fetchall()[0][0]
    assert n >= 3
    assert api(srv, "/api/export/nope").status_code == 404
