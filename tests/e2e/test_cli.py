"""Every `durable` command against a real `durable dev` process (the CLI runs in-process
with typer's CliRunner; a few checks run the real executable), errors included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest
from durable.devtool.cli import app
from typer.testing import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

APP = """
from durable import (Service, VirtualObject, Workflow, Context, ObjectContext,
                     WorkflowContext, TerminalError)

greeter = Service("Greeter")

@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    return await ctx.run("greeting", lambda: f"Hello {name}!")

@greeter.handler()
async def quiet(ctx: Context) -> None:
    return None

orders = VirtualObject("Order")

@orders.handler()
async def process(ctx: ObjectContext, n: int) -> dict:
    ctx.set("count", n)
    aw_id, promise = ctx.awakeable()
    try:
        got = await promise
    except TerminalError as e:
        return {"rejected": e.message}
    ctx.set("status", "DONE")
    return {"got": got}

signup = Workflow("Signup")

@signup.main()
async def run(ctx: WorkflowContext, email: str) -> str:
    return await ctx.promise("confirmed").value()
"""

runner = CliRunner()


def durable(*args: object, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def ok(*args: object, input: str | None = None) -> str:
    r = durable(*args, input=input)
    assert r.exit_code == 0, (args, r.stdout, r.stderr)
    return r.stdout


def refused(*args: object, text: str, input: str | None = None) -> str:
    r = durable(*args, input=input)
    assert r.exit_code == 1, (args, r.exit_code, r.stdout, r.stderr)
    said = " ".join(r.stderr.split())
    assert "error: " in said and text in said.split("error: ", 1)[1], (args, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    return r.stderr


def js(*args: object) -> dict:
    return json.loads(ok(*args, "--json"))


@pytest.fixture
def srv(write_app, dev_server):
    return dev_server(write_app(APP), extra=["--suspend-after", "0.1"])


def wait_status(srv, inv: str, status: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{srv.admin_url}/api/invocations/{inv}", timeout=10).json()
        if body.get("status") == status or time.monotonic() > deadline:
            assert body.get("status") == status, body
            return body
        time.sleep(0.02)


def test_invoke_and_services(srv):
    u = ("--url", srv.admin_url)
    assert json.loads(ok("invoke", "Greeter/greet", '"Ann"', *u)) == "Hello Ann!"
    assert json.loads(ok("invoke", "Greeter/quiet", *u)) is None  # an empty 200
    refused("invoke", "Greeter/quiet", '"x"', *u, text="takes no input")
    sent = ok("invoke", "Greeter/greet", '"Bob"', "--send", *u)
    inv = sent.split()[0]
    assert inv.startswith("inv_") and "(Accepted)" in sent
    assert (
        js("invoke", "Greeter/greet", '"Cy"', "--send", "--idempotency-key", "k1", *u)[
            "invocationId"
        ]
        == js("invoke", "Greeter/greet", '"Cy"', "--send", "--idempotency-key", "k1", *u)[
            "invocationId"
        ]
    )
    o = js("invoke", "Order/process", "5", "--key", "a/b c", "--send", *u)
    assert wait_status(srv, o["invocationId"], "suspended")["key"] == "a/b c"
    later = js("invoke", "Greeter/greet", '"Di"', "--send", "--delay", "10s", *u)
    assert wait_status(srv, later["invocationId"], "scheduled")
    refused("invoke", "Greeter/nope", '"x"', *u, text="Greeter/nope failed (404)")
    refused("invoke", "Greeter/greet", "{bad", *u, text="INPUT must be JSON")
    refused("invoke", "Greeter", *u, text="give SERVICE/HANDLER")
    refused("invoke", "Greeter/greet", '"x"', "--delay", "1s", *u, text="--delay only applies")
    refused("invoke", "Order/process", "1", *u, text="Order is a virtual object")
    out = ok("services", *u)
    assert "Greeter" in out and "Order" in out and "exclusive" in out and srv.url in out
    names = [s["name"] for s in js("services", *u)["services"]]
    assert sorted(names) == ["Greeter", "Order", "Signup"]
    doc = json.loads(ok("services", "--openapi", *u))
    assert "/Order/{key}/process" in doc["paths"]


def test_invocations_ls_and_show(srv):
    u = ("--url", srv.admin_url)
    g = js("invoke", "Greeter/greet", '"Ann"', "--send", *u)["invocationId"]
    o = js("invoke", "Order/process", "7", "--key", "o1", "--send", *u)["invocationId"]
    wait_status(srv, g, "completed")
    wait_status(srv, o, "suspended")
    out = ok("invocations", "ls", *u)
    assert g in out and o in out and "awakeable awk_" in out and "2 of 2" in out
    out = ok("invocations", "ls", "--status", "suspended", "--service", "Order", *u)
    assert o in out and g not in out
    page = js("invocations", "ls", "--status", "completed,suspended", "--limit", "1", *u)
    assert [i["id"] for i in page["invocations"]] == [o] and page["next"] == o
    nxt = js("invocations", "ls", "--limit", "1", "--after", page["next"], *u)
    assert [i["id"] for i in nxt["invocations"]] == [g]
    assert js("invocations", "ls", "--handler", "greet", "--id", g[-6:], *u)["total"] == 1
    assert js("invocations", "ls", "--key", "o1", "--since", "1h", *u)["total"] == 1
    assert js("invocations", "ls", "--until", "2001-01-01", *u)["total"] == 0
    assert "no invocations" in ok("invocations", "ls", "--service", "Nope", *u)
    refused("invocations", "ls", "--status", "sleeping", *u, text="unknown status 'sleeping'")
    out = ok("invocations", "show", o, *u)
    assert "Order/process key 'o1'" in out and "suspended" in out
    assert "set_state" in out and '{"count": 7}' in out and "(waiting)" in out
    assert "waits on:" in out and "request body:" in out
    body = js("invocations", "show", o, *u)
    assert body["journal"][1]["state"] == {"count": 7}
    refused(
        "invocations",
        "show",
        "inv_00000000000000000000000000",
        *u,
        text="unknown invocation inv_00000000000000000000000000",
    )
    refused("invocations", "show", "nope", *u, text="malformed invocation id")


def test_actions_one_and_bulk_with_confirmation(srv):
    u = ("--url", srv.admin_url)
    ids = [
        js("invoke", "Order/process", str(i), "--key", f"k{i}", "--send", *u)["invocationId"]
        for i in range(4)
    ]
    for i in ids:
        wait_status(srv, i, "suspended")
    said = ok("invocations", "pause", ids[0], *u).strip()
    assert said == f"{ids[0]}: paused: it runs again when resumed"
    said = ok("invocations", "resume", ids[0], *u).strip()
    assert said == f"{ids[0]}: resumed: it is ready now"
    wait_status(srv, ids[0], "suspended")
    refused("invocations", "resume", ids[0], *u, text="only paused or backing-off")
    # the answer waits for the handler: it caught the cancellation and returned
    cancel = js("invocations", "cancel", ids[0], *u)
    assert cancel["status"] == "completed", cancel
    assert cancel["message"] == "it ended completed (its handler handled the cancellation)"
    said = ok("invocations", "kill", ids[1], *u).strip()
    assert said == f"{ids[1]}: killed: it stopped at once, without compensation"
    refused("invocations", "kill", ids[1], *u, text="is killed: there is nothing to kill")
    refused("invocations", "kill", *u, text="give an invocation ID, or filters")
    refused("invocations", "kill", ids[2], "--status", "suspended", *u, text="not both")
    refused("invocations", "purge", ids[2], *u, text="only finished invocations can be purged")
    # bulk: a "no" changes nothing, a "yes" kills every match
    refused("invocations", "kill", "--status", "suspended", *u, input="n\n", text="aborted")
    assert wait_status(srv, ids[2], "suspended")
    out = ok("invocations", "kill", "--status", "suspended", "--service", "Order", *u, input="y\n")
    assert "kill 2 invocation(s) matching status=suspended service=Order?" in out
    assert "kill: 2 done, 0 refused" in out
    assert wait_status(srv, ids[3], "killed")
    assert "no invocation matches" in ok("invocations", "pause", "--status", "suspended", *u)
    out = js("invocations", "purge", "--all", "--yes", *u)
    assert len(out["done"]) == 4 and out["failed"] == []
    assert js("invocations", "ls", *u)["total"] == 0


def test_awakeables_ls_resolve_reject(srv):
    u = ("--url", srv.admin_url)
    o1 = js("invoke", "Order/process", "1", "--key", "o1", "--send", *u)["invocationId"]
    o2 = js("invoke", "Order/process", "2", "--key", "o2", "--send", *u)["invocationId"]
    wf = js("invoke", "Signup/run", '"a@b"', "--key", "w1", "--send", *u)["invocationId"]
    for i in (o1, o2, wf):
        wait_status(srv, i, "suspended")
    out = ok("awakeables", "ls", *u)
    assert o1 in out and o2 in out and "promise/Signup/w1/confirmed" in out and wf in out
    pending = js("awakeables", "ls", *u)
    awk = {a["invocation_id"]: a["id"] for a in pending["awakeables"]}
    assert ok("awakeables", "resolve", awk[o1], '{"ok": true}', *u).strip() == (
        f"resolved {awk[o1]}"
    )
    assert wait_status(srv, o1, "completed")["output_value"] == {"got": {"ok": True}}
    refused("awakeables", "resolve", awk[o1], "1", *u, text="was already completed")
    refused("awakeables", "resolve", "awk_nothing-here", *u, text="unknown awakeable")
    refused("awakeables", "resolve", awk[o2], "{bad", *u, text="VALUE must be JSON")
    ok("awakeables", "reject", awk[o2], "sold out", "--code", "410", *u)
    assert wait_status(srv, o2, "completed")["output_value"] == {"rejected": "sold out"}
    ok("awakeables", "resolve", "promise/Signup/w1/confirmed", '"yes"', *u)
    assert wait_status(srv, wf, "completed")["output_value"] == "yes"
    refused("awakeables", "reject", "promise/Signup/w1/confirmed", *u, text="already completed")
    refused("awakeables", "resolve", "promise/Signup/w1", *u, text="a promise id is")
    assert "no pending awakeables" in ok("awakeables", "ls", *u)


def test_state_get_set_ls(srv):
    u = ("--url", srv.admin_url)
    o = js("invoke", "Order/process", "3", "--key", "o1", "--send", *u)["invocationId"]
    wait_status(srv, o, "suspended")
    assert "count" in ok("state", "get", "Order", "o1", *u)
    assert ok("state", "get", "Order", "o1", "count", *u).strip() == "3"
    assert ok("state", "set", "Order", "o1", "note", '{"by": "hand"}', *u).strip() == (
        "set Order/o1 note"
    )
    assert js("state", "get", "Order", "o1", *u)["state"] == {"count": 3, "note": {"by": "hand"}}
    assert js("state", "get", "Order", "o1", "--invocation", o, "--entry", "0", *u)["state"] == {}
    assert js("state", "get", "Order", "o1", "--invocation", o, "--entry", "1", *u)["state"] == {
        "count": 3
    }
    ok("state", "set", "Order", "o1", "note", "--clear", *u)
    assert js("state", "get", "Order", "o1", *u)["state"] == {"count": 3}
    assert js("state", "ls", "Order", *u)["keys"] == [{"key": "o1", "entries": 1}]
    assert "has no state" in ok("state", "get", "Order", "nobody", *u)
    refused("state", "get", "Order", "o1", "nope", *u, text="has no state entry 'nope'")
    refused("state", "set", "Order", "o1", "x", "not json", *u, text="VALUE must be JSON")
    refused("state", "set", "Order", "o1", "x", *u, text="give a VALUE")
    refused("state", "set", "Greeter", "k", "x", "1", *u, text="Greeter is a service")
    refused("state", "get", "Order", "o1", "--entry", "1", *u, text="--entry needs --invocation")
    refused(
        "state",
        "get",
        "Order",
        "o1",
        "--invocation",
        o,
        "--entry",
        "9",
        *u,
        text="has no journal entry 9",
    )


def test_sql_and_export(srv, tmp_path: Path):
    u = ("--url", srv.admin_url)
    ok("invoke", "Greeter/greet", '"Ann"', *u)
    out = ok("sql", "select status, count(*) as n from invocations group by all", *u)
    assert "completed" in out and "1 row(s)" in out
    r = js("sql", "select * from range(5)", "--limit", "2", *u)
    assert r["rows"] == [[0], [1]] and r["truncated"]
    refused("sql", "delete from invocations", *u, text="only read-only queries")
    refused("sql", "update state set value = '1'", *u, text="UPDATE statement")
    refused("sql", "select * from nowhere", *u, text="the query failed")
    files = js("export", tmp_path / "out", *u)["files"]
    assert {f["table"] for f in files} >= {"invocations", "journal", "state", "state_history"}
    n = duckdb.sql(f"select count(*) from '{tmp_path / 'out' / 'journal.parquet'}'").fetchall()
    assert n[0][0] == 3  # input, run, output
    (tmp_path / "file").write_text("x")
    refused("export", tmp_path / "file", *u, text="is not a folder")


def test_reads_open_the_store_read_only_when_no_runtime_runs(srv, tmp_path: Path):
    u = ("--url", srv.admin_url)
    o = js("invoke", "Order/process", "4", "--key", "o1", "--send", *u)["invocationId"]
    wait_status(srv, o, "suspended")
    # the runtime holds the file: --store finds it through the holder file, no lock fight
    assert js("invocations", "ls", "--store", srv.store)["total"] == 1
    srv.stop()
    st = ("--store", srv.store)
    r = durable("invocations", "ls", *st)
    assert r.exit_code == 0 and o in r.stdout
    assert "reading the store" in r.stderr and "read-only" in r.stderr
    body = json.loads(durable("invocations", "show", o, "--json", *st).stdout)
    assert body["status"] == "suspended" and body["journal"][1]["state"] == {"count": 4}
    assert o in durable("awakeables", "ls", *st).stdout
    assert json.loads(durable("state", "get", "Order", "o1", "--json", *st).stdout)["state"] == {
        "count": 4
    }
    assert "1 row(s)" in durable("sql", "select count(*) from invocations", *st).stdout
    refused("sql", "delete from journal", *st, text="only read-only queries")
    assert durable("export", tmp_path / "x", *st).exit_code == 0
    assert (tmp_path / "x" / "invocations.parquet").exists()
    for args in (
        ("invocations", "kill", o),
        ("state", "set", "Order", "o1", "x", "1"),
        ("awakeables", "resolve", "awk_abcdefghijk"),
        ("services",),
        ("invoke", "Greeter/greet"),
        ("invocations", "replay", o),
    ):
        refused(*args, "--url", srv.admin_url, text="needs a running runtime")
    refused("invocations", "ls", "--store", tmp_path / "none.duckdb", text="there is no store at")
    refused("invocations", "ls", "--url", srv.admin_url, text="no runtime answers at")
    # the CLI let go of the file: a runtime starts on it again and sees the same invocation
    srv.start()
    assert js("invocations", "show", o, "--url", srv.admin_url)["status"] == "suspended"


def test_in_a_project_folder_the_cli_uses_that_folders_runtime_only(
    srv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from durable.devtool import client
    from durable.devtool.store import Store

    o = js("invoke", "Order/process", "4", "--key", "o1", "--send", "--url", srv.admin_url)
    # another project's runtime answers on the default URL ...
    monkeypatch.setattr(client, "DEFAULT_URL", srv.admin_url)
    r = durable("invocations", "ls")  # ... used from a folder with no store of its own
    assert r.exit_code == 0 and o["invocationId"] in r.stdout
    assert f"runtime at {srv.admin_url} (store {srv.store}, PID" in r.stderr
    # a project folder whose runtime is stopped: its own store, read-only, never srv's
    project = tmp_path / "project"
    (project / ".durable").mkdir(parents=True)
    Store.open(str(project / ".durable" / "durable.duckdb")).close()
    monkeypatch.chdir(project)
    r = durable("invocations", "ls")
    assert r.exit_code == 0 and o["invocationId"] not in r.stdout, r.stdout
    said = " ".join(r.stderr.split())
    assert f"no runtime runs for the store {project / '.durable' / 'durable.duckdb'}" in said
    assert f"the runtime at {srv.admin_url} serves another store ({srv.store})" in said
    refused("invocations", "kill", o["invocationId"], text="no runtime runs for the store")
    from durable.devtool.commands import tui as tui_command

    monkeypatch.setattr(tui_command, "DEFAULT_URL", srv.admin_url)
    refused("tui", text=f"the runtime at {srv.admin_url} serves another store ({srv.store})")
    # --url still reaches any runtime
    assert js("invocations", "ls", "--url", srv.admin_url)["total"] == 1


def test_the_real_executable_exits_non_zero_with_a_clear_message(srv):
    env = {**os.environ, "DURABLE_URL": srv.admin_url}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "durable.devtool.cli",
            "invocations",
            "show",
            "inv_00000000000000000000000000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == (
        "error: unknown invocation inv_00000000000000000000000000"
    )
    assert r.stderr.startswith(f"[durable] runtime at {srv.admin_url} (store {srv.store}")
    r = subprocess.run(
        [sys.executable, "-m", "durable.devtool.cli", "invoke", "Greeter/greet", '"Ann"'],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 0 and json.loads(r.stdout) == "Hello Ann!"


def test_init_scaffolds_projects_whose_tests_pass(tmp_path: Path):
    listed = ok("init", "--list")
    assert "minimal" in listed and "food-order" in listed
    for template in ("minimal", "food-order"):
        target = tmp_path / template
        out = ok("init", target, "--template", template)
        assert "app.py" in out and (target / ".gitignore").exists()
        assert "{{" not in (target / "README.md").read_text()
        env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        r = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "2 passed" in r.stdout
    refused("init", tmp_path / "minimal", text="is not empty")
    refused("init", tmp_path / "new", "--template", "nope", text="unknown template 'nope'")
    assert "  app.py" in ok("init", tmp_path / "minimal", "--force")


def test_sql_summary_names_the_cap_that_cut_the_result():
    from durable.devtool.commands.data import cut_note

    assert "raise --limit" in cut_note({"truncated": True, "truncated_by": "rows"})
    by_size = cut_note({"truncated": True, "truncated_by": "bytes"})
    assert "size cap" in by_size and "--limit" not in by_size
    assert cut_note({"truncated": False, "truncated_by": None}) == ""
