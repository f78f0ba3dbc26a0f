"""Failures and logs against a real `durable dev` process: the `failed` status and its
filter, every failed attempt with its file:line and traceback, what handlers print or
log (console, /api/events, the invocation), bounds, replay quiet, and a restart."""

from __future__ import annotations

import time

import httpx
import pytest
from durable.devtool.cli import app
from typer.testing import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

APP = """
from datetime import timedelta
import durable
from durable import Service, Context, TerminalError, RetryPolicy

log = durable.getLogger("shop")
fast = RetryPolicy(initial_interval=timedelta(milliseconds=10), max_attempts=3)
svc = Service("Shop", retry_policy=fast)

@svc.handler()
async def buy(ctx: Context, item: str) -> str:
    print(f"buying {item}")
    log.info("checking stock of %s", item)
    await ctx.run("stock", lambda: print("in the stock body"))
    if item == "tomato":
        raise TerminalError("out of tomatoes", 409)
    if item == "missing":
        stock = {}
        return stock["missing"]  # LINE-KEYERROR
    return item

@svc.handler()
async def chatty(ctx: Context, n: int) -> int:
    for i in range(n):
        print(f"line {i}")
    print("x" * 10000)
    return n

@svc.handler()
async def sleepy(ctx: Context) -> str:
    print("before the sleep")
    log.warning("only once")
    await ctx.sleep(timedelta(seconds=0.3))
    print("after the sleep")
    return "ok"
"""


def _line(source: str, marker: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), 1) if marker in line)


def _wait_status(api: httpx.Client, inv_id: str, statuses: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        inv = api.get(f"/api/invocations/{inv_id}").json()
        if inv["status"] in statuses or time.monotonic() > deadline:
            return inv
        time.sleep(0.05)


def _wait_log(server, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while text not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.log()


def test_failures_and_logs_end_to_end(write_app, dev_server, tmp_path):
    path = write_app(APP)
    server = dev_server(path, ["--suspend-after", "0"])  # a sleep suspends: a replay follows
    admin = httpx.Client(base_url=server.admin_url, timeout=30)
    with server.client() as c:
        assert c.post("/Shop/buy", json="apple").json() == "apple"
        r = c.post("/Shop/buy", json="tomato")
        assert r.status_code == 409 and r.json()["message"] == "out of tomatoes"
        sent = c.post("/Shop/buy/send", json="missing").json()["invocationId"]
    # a refused request (not JSON) is not stored at all
    with server.client() as c:
        bad = c.post(
            "/Shop/buy", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400
    paused = _wait_status(admin, sent, {"paused"})
    assert paused["status"] == "paused"

    # the failed status and its filter
    failed = admin.get("/api/invocations", params={"status": "failed"}).json()["invocations"]
    assert [i["handler"] for i in failed] == ["buy"]
    assert failed[0]["status"] == "failed"
    done = admin.get("/api/invocations", params={"status": "completed"}).json()["invocations"]
    assert len(done) == 1
    every = admin.get("/api/invocations").json()["invocations"]
    assert len(every) == 3  # the refused request made none

    # every attempt, with the handler's file:line and the traceback
    inv = admin.get(f"/api/invocations/{sent}").json()
    line = _line(APP, "LINE-KEYERROR")
    assert [a["attempt"] for a in inv["attempts"]] == [1, 2, 3]
    assert [a["outcome"] for a in inv["attempts"]] == ["backing-off", "backing-off", "paused"]
    for a in inv["attempts"]:
        assert a["error"] == "KeyError: 'missing'"
        assert a["location"] == f"app.py:{line}"
        assert 'return stock["missing"]' in a["stack"]
        assert a["started_at"] <= a["ended_at"]
    tomato = admin.get(f"/api/invocations/{failed[0]['id']}").json()
    [t] = tomato["attempts"]
    assert t["outcome"] == "failed" and "out of tomatoes" in t["error"]
    assert t["location"] == f"app.py:{_line(APP, 'out of tomatoes')}"

    # logs: stored per invocation, in order, per attempt; the body printed once
    msgs = [(g["attempt"], g["stream"], g["message"]) for g in inv["logs"]]
    assert msgs[:3] == [
        (1, "stdout", "buying missing"),
        (1, "log", "shop: checking stock of missing"),
        (1, "stdout", "in the stock body"),
    ]
    # later attempts replay up to the run entry: what came before is not said again
    assert len(msgs) == 3

    # the console: prefixed lines, the first failure with its traceback, later ones short
    log = _wait_log(server, "attempt 3 failed")
    assert f"[Shop/buy {sent}] buying missing" in log
    assert f"[Shop/buy {sent}] shop: checking stock of missing" in log
    assert f"attempt 1 failed at app.py:{line}, retrying: KeyError: 'missing'" in log
    assert f"attempt 2 failed at app.py:{line}, retrying: KeyError: 'missing'" in log
    assert f"attempt 3 failed at app.py:{line}; paused: KeyError: 'missing'" in log
    assert log.count("Traceback (most recent call last)") == 1
    assert "executor.py" not in log  # the traceback shows the handler's frames only
    assert "failed at app.py:" in log and "TerminalError(409): out of tomatoes" in log

    # /api/events carries the same lines (the TUI's log follows it)
    events = admin.get("/api/events").json()["events"]
    assert any(e["level"] == "log" and "buying missing" in e["message"] for e in events)

    # bounds: a long line is cut with a note; lines past the cap are not kept
    with server.client() as c:
        assert c.post("/Shop/chatty", json=1200).json() == 1200
    chatty = admin.get("/api/invocations", params={"handler": "chatty"}).json()["invocations"][0]
    logs = admin.get(f"/api/invocations/{chatty['id']}").json()["logs"]
    assert len(logs) == 1001
    assert "not kept (1000 at most)" in logs[-1]["message"]

    # a replay after a suspension does not print again; logs survive a restart
    with server.client() as c:
        assert c.post("/Shop/sleepy").json() == "ok"
    sleepy = admin.get("/api/invocations", params={"handler": "sleepy"}).json()["invocations"][0]
    admin.close()
    server.stop()
    server.start()
    admin = httpx.Client(base_url=server.admin_url, timeout=30)
    logs = admin.get(f"/api/invocations/{sleepy['id']}").json()["logs"]
    assert [g["message"] for g in logs] == [
        "before the sleep",
        "shop: only once",
        "after the sleep",
    ]
    assert logs[1]["level"] == "WARNING"
    admin.close()

    # `durable invocations show` prints the attempts, the last stack trace and the logs;
    # `ls --status failed` lists the failed one
    runner = CliRunner()
    r = runner.invoke(app, ["invocations", "show", sent, "--url", server.admin_url])
    assert r.exit_code == 0, r.stdout
    assert "failed attempts" in r.stdout and f"app.py:{line}" in r.stdout
    assert "last stack trace (attempt 3)" in r.stdout
    assert 'return stock["missing"]' in r.stdout
    assert "buying missing" in r.stdout
    r = runner.invoke(app, ["invocations", "ls", "--status", "failed", "--url", server.admin_url])
    assert r.exit_code == 0, r.stdout
    assert "failed" in r.stdout and "out of tomatoes" in r.stdout and "1 of 1" in r.stdout

    # purging a failed invocation takes its attempts and logs too
    tomato_id = failed[0]["id"]
    r = runner.invoke(app, ["invocations", "purge", tomato_id, "--yes", "--url", server.admin_url])
    assert r.exit_code == 0, r.stdout
    sql = (
        f"SELECT (SELECT count(*) FROM attempts WHERE invocation_id = '{tomato_id}'), "
        f"(SELECT count(*) FROM logs WHERE invocation_id = '{tomato_id}')"
    )
    with httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        assert admin.post("/api/sql", json={"sql": sql}).json()["rows"] == [[0, 0]]


def test_inline_mode_prints_and_keeps_logs_too(write_app, dev_server):
    server = dev_server(write_app(APP), ["--inline"])
    with server.client() as c:
        r = c.post("/Shop/buy", json="tomato")
    assert r.status_code == 409
    with httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        [inv] = admin.get("/api/invocations", params={"status": "failed"}).json()["invocations"]
        body = admin.get(f"/api/invocations/{inv['id']}").json()
    assert [g["message"] for g in body["logs"]] == [
        "buying tomato",
        "shop: checking stock of tomato",
        "in the stock body",
    ]
    assert body["attempts"][0]["location"] == f"app.py:{_line(APP, 'out of tomatoes')}"
    log = _wait_log(server, "out of tomatoes")
    assert f"[Shop/buy {inv['id']}] buying tomato" in log
    assert f"[Shop/buy {inv['id']}] in the stock body" in log
    # the runtime's own lines are not mistaken for the handler's
    assert "[Shop/buy" not in "\n".join(
        line for line in log.splitlines() if "ready in" in line or "failed at" in line
    )
