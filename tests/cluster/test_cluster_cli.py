"""`durable ... --restate URL` against a real restate-server: every read (human and
``--json``), every action with its effect checked in Restate's own SQL, awakeables
resolved and rejected, state set, invoke through the ingress, and the refusals (a
feature Restate has not, a cluster that does not answer)."""

from __future__ import annotations

import json
import time

import pytest
from durable.devtool.cli import app
from typer.testing import CliRunner

from tests.cluster.conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

runner = CliRunner()


def durable(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def ok(cluster: Cluster, *args: object) -> str:
    r = durable(*args, "--restate", cluster.admin_url)
    assert r.exit_code == 0, (args, r.stdout, r.stderr)
    assert f"Restate cluster at {cluster.admin_url} (Restate 1.7." in r.stderr
    return r.stdout


def js(cluster: Cluster, *args: object):
    return json.loads(ok(cluster, *args, "--json"))


def refused(cluster: Cluster | None, *args: object, text: str) -> str:
    where = ["--restate", cluster.admin_url] if cluster else []
    r = durable(*args, *where)
    assert r.exit_code == 1, (args, r.exit_code, r.stdout, r.stderr)
    said = " ".join(r.stderr.split())
    assert "error: " in said and text in said.split("error: ", 1)[1], (args, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    return said


def until(test, timeout: float = 20, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen in {timeout} s")


@pytest.fixture(scope="module")
def made(cluster: Cluster) -> dict[str, str]:
    """One of each kind of invocation, by name."""
    assert cluster.call("Kitchen/everything", 7).status_code == 200
    assert cluster.call("Kitchen/refuse", "no").status_code == 418
    assert cluster.call("Pantry/shelf-1/stock", "flour").status_code == 200
    assert cluster.call("Kitchen/steps", 1).json() == 4
    ids = {
        "everything": cluster.id_of("Kitchen/everything"),
        "refuse": cluster.id_of("Kitchen/refuse"),
        "stock": cluster.id_of("Pantry/stock"),
        "steps": cluster.id_of("Kitchen/steps"),
        "signup": cluster.send("Signup/bob/run", "bob@example.com"),
    }
    for name in ("wait-a", "wait-b", "wait-c"):
        ids[name] = cluster.send("Kitchen/wait", name)
    for name in ids:
        if name.startswith("wait") or name == "signup":
            cluster.wait_for(ids[name], lambda row: row.get("status") == "suspended")
    return ids


def test_invocations_ls_with_filters_pages_and_counts(cluster: Cluster, made) -> None:
    text = ok(cluster, "invocations", "ls")
    assert made["everything"] in text and "Kitchen/everything" in text and "completed" in text
    assert "failed" in text  # Restate's completed-with-failure
    page = js(cluster, "invocations", "ls", "--status", "suspended")
    found = {i["id"]: i for i in page["invocations"]}
    assert {made["wait-a"], made["signup"]} <= set(found)
    assert all(i["status"] == "suspended" for i in page["invocations"])
    awk = found[made["wait-a"]]["waiting"][0]
    assert awk["kind"] == "awakeable" and awk["awakeable_id"].startswith("sign_1")
    assert found[made["signup"]]["waits_on"] == "promise 'code'"
    failed = js(cluster, "invocations", "ls", "--status", "failed", "--service", "Kitchen")
    assert [i["id"] for i in failed["invocations"]] == [made["refuse"]]
    assert failed["invocations"][0]["failure"] == {"code": 418, "message": "refused: no"}
    keyed = js(cluster, "invocations", "ls", "--service", "Pantry", "--key", "shelf-1")
    assert [i["id"] for i in keyed["invocations"]] == [made["stock"]]
    handler = js(cluster, "invocations", "ls", "--handler", "steps")
    assert [i["id"] for i in handler["invocations"]] == [made["steps"]]
    assert (
        js(cluster, "invocations", "ls", "--id", made["steps"][5:20])["invocations"][0]["id"]
        == made["steps"]
    )
    assert js(cluster, "invocations", "ls", "--since", "1h")["invocations"]
    assert not js(cluster, "invocations", "ls", "--until", "1h")["invocations"]
    # keyset paging: two pages of 2 join up, newest first
    first = js(cluster, "invocations", "ls", "--limit", 2)
    second = js(cluster, "invocations", "ls", "--limit", 2, "--after", first["next"])
    every = js(cluster, "invocations", "ls", "--limit", 4)
    assert [i["id"] for i in first["invocations"] + second["invocations"]] == [
        i["id"] for i in every["invocations"]
    ]
    total = cluster.query("SELECT count(*) AS n FROM sys_invocation")[0]["n"]
    assert f"of {total}" in ok(cluster, "invocations", "ls", "--limit", 2)


def test_invocations_show_journal_and_waits(cluster: Cluster, made) -> None:
    text = ok(cluster, "invocations", "show", made["everything"])
    for word in ("Kitchen/everything", "completed", "double", "Helper/echo", "awakeable"):
        assert word in text
    body = js(cluster, "invocations", "show", made["everything"])
    kinds = [e["kind"] for e in body["journal"]]
    assert kinds[:4] == ["input", "run", "sleep", "call"] and kinds[-1] == "output"
    assert body["request"]["body"] == 7 and body["output_value"]["doubled"] == 14
    assert body["journal"][3]["child_id"] == cluster.row(body["journal"][3]["child_id"])["id"]
    waiting = js(cluster, "invocations", "show", made["wait-b"])
    assert waiting["status"] == "suspended"
    assert [e["kind"] for e in waiting["journal"]] == ["input", "run", "awakeable", "run"]
    assert waiting["waiting"][0]["awakeable_id"] == waiting["journal"][3]["result"]
    child = body["journal"][3]["child_id"]
    assert js(cluster, "invocations", "show", child)["caller"] == {
        "id": made["everything"],
        "entry": 3,
        "kind": "call",
    }
    failed = js(cluster, "invocations", "show", made["refuse"])
    assert failed["status"] == "failed" and failed["failure"]["code"] == 418
    # a journal Restate dropped (after journal_retention; here by hand) is said to be gone
    import httpx

    r = httpx.patch(f"{cluster.admin_url}/invocations/{made['refuse']}/purge-journal")
    assert r.status_code in (200, 202), r.text
    until(lambda: not cluster.journal(made["refuse"]), what="the journal purge")
    text = " ".join(ok(cluster, "invocations", "show", made["refuse"]).split())
    assert "note: Restate keeps no journal for this invocation" in text and "failed" in text
    refused(cluster, "invocations", "show", "inv_1" + "0" * 33, text="unknown invocation")
    refused(cluster, "invocations", "show", "inv_nope", text="malformed invocation id")


def test_invocations_tree(cluster: Cluster, made) -> None:
    text = ok(cluster, "invocations", "tree", made["everything"])
    assert "Helper/echo" in text and "call from entry 3" in text and "send from entry 4" in text
    tree = js(cluster, "invocations", "tree", made["everything"])
    assert tree["root"] == made["everything"]
    assert [(n["depth"], n["via"], n["entry"]) for n in tree["nodes"]][:3] == [
        (0, "root", None),
        (1, "call", 3),
        (1, "send", 4),
    ]


def test_state_services_awakeables_and_sql(cluster: Cluster, made) -> None:
    text = ok(cluster, "state", "get", "Pantry", "shelf-1")
    assert "count" in text and '"flour"' in text
    assert js(cluster, "state", "get", "Pantry", "shelf-1")["state"] == {
        "count": 1,
        "last": "flour",
    }
    assert js(cluster, "state", "ls", "Pantry")["keys"] == [{"key": "shelf-1", "entries": 2}]
    # keys and names reach Restate's SQL as quoted literals, never as SQL
    assert js(cluster, "state", "get", "Pantry", "x' OR '1'='1")["state"] == {}
    assert js(cluster, "state", "ls", "Pantry' OR '1'='1")["keys"] == []
    assert "shelf-1" in ok(cluster, "state", "ls", "Pantry")
    services = js(cluster, "services")
    kitchen = next(s for s in services["services"] if s["name"] == "Kitchen")
    assert kitchen["kind"] == "service" and "everything" in {h["name"] for h in kitchen["handlers"]}
    assert {s["name"]: s["kind"] for s in services["services"]}["Pantry"] == "object"
    assert services["ingress_url"] == cluster.server.ingress_url
    assert "Signup" in ok(cluster, "services") and "workflow" in ok(cluster, "services")
    pending = js(cluster, "awakeables", "ls")
    waiting = {a["invocation_id"]: a for a in pending["awakeables"]}
    assert made["wait-a"] in waiting and waiting[made["wait-a"]]["entry_index"] == 2
    promise = next(p for p in pending["promises"] if p["key"] == "bob")
    assert promise["name"] == "code" and promise["invocation_id"] == made["signup"]
    assert promise["entry_index"] == 2
    assert waiting[made["wait-a"]]["id"] in ok(cluster, "awakeables", "ls")
    rows = js(cluster, "sql", "SELECT id, status FROM sys_invocation WHERE status = 'suspended'")
    assert rows["columns"] == ["id", "status"] and [made["wait-a"], "suspended"] in rows["rows"]
    assert "suspended" in ok(cluster, "sql", "SELECT status FROM sys_invocation")
    refused(cluster, "sql", "SELECT * FROM no_such_table", text="Restate's SQL refused")


def test_awakeables_resolved_and_rejected_through_the_cli(cluster: Cluster, made) -> None:
    pending = {a["invocation_id"]: a["id"] for a in js(cluster, "awakeables", "ls")["awakeables"]}
    assert "resolved" in ok(cluster, "awakeables", "resolve", pending[made["wait-a"]], '{"n": 1}')
    row = cluster.wait_for(made["wait-a"], lambda r: r.get("status") == "completed")
    assert row["completion_result"] == "success"
    out = js(cluster, "invocations", "show", made["wait-a"])["output_value"]
    assert out == {"first": "wait-a-1", "value": {"n": 1}}
    ok(cluster, "awakeables", "reject", pending[made["wait-b"]], "no stock")
    row = cluster.wait_for(made["wait-b"], lambda r: r.get("status") == "completed")
    assert row["completion_result"] == "failure" and "no stock" in row["completion_failure"]
    refused(cluster, "awakeables", "resolve", "sign_1nope", "1", text="Restate's ingress answered")
    refused(
        cluster,
        "awakeables",
        "resolve",
        "promise/Signup/bob/code",
        '"1234"',
        text="not available on a Restate cluster",
    )


def test_state_set_and_clear(cluster: Cluster, made) -> None:
    ok(cluster, "state", "set", "Pantry", "shelf-1", "note", '"by hand"')
    state = "SELECT key, value_utf8 FROM state WHERE service_key = 'shelf-1' ORDER BY key"

    def values() -> dict:
        return {r["key"]: r["value_utf8"] for r in cluster.query(state)}

    until(lambda: values().get("note") == '"by hand"', what="the state set")
    assert values()["last"] == '"flour"'  # the rest of the key's state kept
    ok(cluster, "state", "set", "Pantry", "shelf-1", "note", "--clear")
    until(lambda: "note" not in values(), what="the state clear")
    assert values() == {"count": "1", "last": '"flour"'}


def test_invoke_through_the_ingress(cluster: Cluster, made) -> None:
    assert json.loads(ok(cluster, "invoke", "Kitchen/steps", "10")) == 13
    assert json.loads(ok(cluster, "invoke", "Pantry/look", "--key", "shelf-1")) == "flour"
    sent = ok(cluster, "invoke", "Kitchen/steps", "20", "--send")
    inv_id = sent.split()[0]
    cluster.wait_for(inv_id, lambda r: r.get("status") == "completed")
    later = ok(cluster, "invoke", "Kitchen/steps", "30", "--send", "--delay", "1h").split()[0]
    cluster.wait_for(later, lambda r: r.get("status") == "scheduled")
    (row,) = js(cluster, "invocations", "ls", "--status", "scheduled")["invocations"]
    assert row["id"] == later and row["waits_on"].startswith("its start time ")
    assert row["scheduled_at"] > row["created_at"] and row["actions"] == ["cancel", "kill"]
    assert "killed" in ok(cluster, "invocations", "kill", later)
    sql = f"SELECT status FROM sys_invocation WHERE id = '{later}'"
    until(lambda: [r.get("status") for r in cluster.query(sql)] != ["scheduled"], what="kill")


def test_cancel_and_kill(cluster: Cluster, made) -> None:
    said = ok(cluster, "invocations", "cancel", made["wait-c"])
    assert made["wait-c"] in said
    row = cluster.wait_for(made["wait-c"], lambda r: r.get("status") == "completed")
    assert row["completion_failure"] == "[409] cancelled"
    assert js(cluster, "invocations", "show", made["wait-c"])["status"] == "cancelled"
    refused(cluster, "invocations", "cancel", made["wait-c"], text="nothing to cancel")
    js(cluster, "invocations", "kill", made["signup"])
    row = cluster.wait_for(made["signup"], lambda r: r.get("status") == "completed")
    assert row["completion_failure"] == "[409] killed"
    assert (
        js(cluster, "invocations", "ls", "--status", "killed")["invocations"][0]["id"]
        == (made["signup"])
    )


def test_pause_resume_kill_and_purge(cluster: Cluster) -> None:
    inv = cluster.send("Kitchen/stuck", "s")
    cluster.wait_for(inv, lambda r: r.get("status") == "backing-off")
    assert js(cluster, "invocations", "pause", inv)["status"] == "paused"
    cluster.wait_for(inv, lambda r: r.get("status") == "paused")
    assert "paused" in ok(cluster, "invocations", "ls", "--status", "paused")
    said = ok(cluster, "invocations", "resume", inv)
    assert "resumed" in said
    cluster.wait_for(inv, lambda r: r.get("status") in ("backing-off", "running", "ready"))
    ok(cluster, "invocations", "kill", inv, "--yes")
    cluster.wait_for(inv, lambda r: r.get("completion_failure") == "[409] killed")
    assert js(cluster, "invocations", "purge", inv)["status"] == "purged"
    until(lambda: not cluster.query(f"SELECT id FROM sys_invocation WHERE id = '{inv}'"))
    refused(cluster, "invocations", "purge", inv, text="unknown invocation")


def test_bulk_action_over_a_filter(cluster: Cluster) -> None:
    ids = [cluster.send("Kitchen/wait", f"bulk-{i}") for i in range(2)]
    for i in ids:
        cluster.wait_for(i, lambda r: r.get("status") == "suspended")
    r = js(cluster, "invocations", "kill", "--handler", "wait", "--status", "suspended", "--yes")
    assert {d["id"] for d in r["done"]} >= set(ids) and not r["failed"]
    for i in ids:
        cluster.wait_for(i, lambda r: r.get("completion_failure") == "[409] killed")


def test_restart_from_an_entry(cluster: Cluster, made) -> None:
    first, second = cluster.call("Kitchen/stamps").json()
    original = cluster.id_of("Kitchen/stamps")
    r = js(cluster, "invocations", "restart", original, "--from", 2)
    assert r["restarted_from"] == original and r["id"] != original and r["from"] == 2
    row = cluster.wait_for(r["id"], lambda row: row.get("status") == "completed")
    assert row["restarted_from"] == original
    out = js(cluster, "invocations", "show", r["id"])["output_value"]
    assert out[0] == first and out[1] != second  # entry 1 kept, entry 2 re-executed
    said = ok(cluster, "invocations", "restart", original, "--from", 3)
    assert f"restarted {original} from entry 3" in said
    again = cluster.id_of("Kitchen/stamps")
    cluster.wait_for(again, lambda row: row.get("status") == "completed")
    assert js(cluster, "invocations", "show", again)["output_value"] == [first, second]
    refused(cluster, "invocations", "restart", original, "--from", 9, text="past the end")
    running = cluster.send("Kitchen/wait", "restart-me")
    cluster.wait_for(running, lambda r: r.get("status") == "suspended")
    refused(cluster, "invocations", "restart", running, "--from", 1, text="kill it first")
    r = js(cluster, "invocations", "restart", running, "--from", 2, "--kill")
    assert r["killed_original"] and r["id"] != running
    assert (
        cluster.wait_for(running, lambda r: r.get("status") == "completed")["completion_failure"]
        == "[409] killed"
    )


def test_what_a_cluster_cannot_do_is_refused_with_the_reason(cluster: Cluster, made) -> None:
    refused(
        cluster,
        "invocations",
        "replay",
        made["everything"],
        text="not available on a Restate cluster: replay runs local code",
    )
    said = refused(cluster, "export", "out", text="not available on a Restate cluster")
    assert "SQL" in said
    refused(cluster, "invocations", "ls", "--store", "x.duckdb", text="not both")


def test_a_cluster_that_does_not_answer(tmp_path) -> None:
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    for args in (("invocations", "ls"), ("state", "get", "A", "b"), ("invocations", "kill", "x")):
        said = refused(None, *args, "--restate", url, text=f"no Restate admin API answers at {url}")
        assert "9070" in said
    r = runner.invoke(app, ["invocations", "ls"], env={"DURABLE_RESTATE_URL": url})
    assert r.exit_code == 1 and f"no Restate admin API answers at {url}" in r.stderr
    refused(None, "invocations", "ls", "--restate", "restate:9070", text="takes the URL")


def test_the_admin_api_over_a_cluster_says_what_it_cannot_do(cluster: Cluster, made) -> None:
    import asyncio

    import httpx
    from durable.devtool.cluster.app import cluster_app

    async def talk() -> dict[str, httpx.Response]:
        app = cluster_app(cluster.admin_url)
        transport = httpx.ASGITransport(app=app)
        got: dict[str, httpx.Response] = {}
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
            got["health"] = await c.get("/health")
            got["openapi"] = await c.get("/api/openapi.json")
            got["replay"] = await c.post(f"/api/invocations/{made['everything']}/replay")
            got["replay_many"] = await c.post("/api/replay", json={"ids": []})
            got["export"] = await c.get("/api/export/invocations")
            got["as_of"] = await c.get(f"/api/state/Pantry/shelf-1?invocation={made['stock']}")
            got["promise"] = await c.post(
                "/api/promises/resolve",
                json={"service": "Signup", "key": "bob", "name": "code", "value": 1},
            )
            got["dry_run"] = await c.post(
                "/api/invocations/bulk",
                json={"action": "kill", "filter": {"handler": "refuse"}, "dry_run": True},
            )
            got["cross_site"] = await c.post(
                f"/api/invocations/{made['stock']}/purge",
                headers={"origin": "http://evil.example"},
            )
            got["get_action"] = await c.get(f"/api/invocations/{made['stock']}/purge")
            got["unknown"] = await c.get("/api/nothing")
        await app.state.restate.close()
        return got

    got = asyncio.run(talk())
    health = got["health"].json()
    assert health["status"] == "ok" and health["cluster"] == cluster.admin_url
    assert health["restate_version"].startswith("1.7") and health["ingress_url"]
    for name in ("openapi", "replay", "replay_many", "export", "as_of", "promise"):
        r = got[name]
        assert r.status_code == 501, (name, r.text)
        assert r.json()["message"].startswith("not available on a Restate cluster: "), name
    assert "durable pull" in got["replay"].json()["message"]
    assert got["dry_run"].json() == {"action": "kill", "matched": 1, "ids": [made["refuse"]]}
    assert got["cross_site"].status_code == 403 and got["get_action"].status_code == 405
    assert got["unknown"].status_code == 404
    assert cluster.row(made["stock"])["status"] == "completed"  # nothing was purged


def test_health_asks_restate_each_time_so_a_cluster_gone_is_seen(tmp_path) -> None:
    import asyncio

    import httpx
    from durable.devtool.cluster.app import cluster_app

    from tests.restate_server import RestateServer

    server = RestateServer(tmp_path).start()

    async def talk() -> list[int]:
        transport = httpx.ASGITransport(app=cluster_app(server.admin_url))
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
            seen = [(await c.get("/health")).status_code]
            server.kill()
            r = await c.get("/health")
            seen.append(r.status_code)
            assert "no Restate admin API answers" in r.json()["message"]
            return seen

    try:
        assert asyncio.run(talk()) == [200, 502]
    finally:
        server.stop()
