"""Never hang in silence: while the app does not load, a blocking call keeps its request
open (as Restate does) and loses nothing, and everything says why: the console within
a second, the admin API (services, health, "waiting on"), and the CLI. Port conflicts
name every taken port at once and the durable runtime holding them."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from durable.devtool.cli import app as cli_app
from typer.testing import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

GOOD = """
from durable import Context, Service

signup = Service("Signup")

@signup.handler()
async def ping(ctx: Context) -> str:
    return await ctx.run("pong", lambda: "pong")
"""

BROKEN = GOOD.replace("async def ping(ctx: Context) -> str:", "async def ping(ctx: Context) -> str")


def wait_for(check, timeout: float = 20.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_blocking_call_while_the_app_is_broken_is_explained_and_loses_nothing(
    write_app, dev_server
):
    path = write_app(GOOD)
    srv = dev_server(path)
    assert httpx.post(srv.url + "/Signup/ping", timeout=10).json() == "pong"
    path.write_text(BROKEN)
    services = wait_for(
        lambda: (
            (b := httpx.get(srv.admin_url + "/api/services", timeout=5).json())["app_error"] and b
        ),
        what="the reload to fail",
    )
    broken = services["app_error"]
    assert broken["summary"].startswith(f"syntax error in {path}, line 7")
    assert broken["since"] and services["services"], services  # still listed
    health = httpx.get(srv.admin_url + "/health", timeout=5).json()
    assert health["app_error"]["summary"] == broken["summary"]

    answer: dict = {}

    def call() -> None:
        answer["r"] = httpx.post(srv.url + "/Signup/ping", timeout=60)

    caller = threading.Thread(target=call)
    t0 = time.monotonic()
    caller.start()
    # within a second, the console says who waits and why
    wait_for(lambda: "the caller waits" in srv.log(), timeout=1.0, what="the console line")
    assert time.monotonic() - t0 < 1.5
    line = next(x for x in srv.log().splitlines() if "the caller waits" in x)
    assert "Signup/ping inv_" in line and f"syntax error in {path}, line 7" in line
    # the admin API shows it waiting on the app, with the error
    rows = wait_for(
        lambda: httpx.get(srv.admin_url + "/api/invocations?status=ready", timeout=5).json()[
            "invocations"
        ],
        what="the ready invocation",
    )
    assert rows[0]["waits_on"].startswith("the app to load (syntax error in")
    # the CLI says it too
    r = CliRunner().invoke(cli_app, ["invocations", "ls", "--url", srv.admin_url])
    assert r.exit_code == 0, r.stderr
    said = " ".join(r.stderr.split())
    assert "the app does not load (since" in said and "line 7" in said
    assert "the app to load" in " ".join(r.stdout.split())
    assert caller.is_alive()  # the request stays open ...
    path.write_text(GOOD)
    caller.join(30)
    assert answer["r"].status_code == 200 and answer["r"].json() == "pong"  # ... and loses nothing
    assert httpx.get(srv.admin_url + "/api/services", timeout=5).json()["app_error"] is None


FLAKY = """
from durable import Context, Service

flaky = Service("Flaky")
tries = []

@flaky.handler()
async def go(ctx: Context) -> str:
    tries.append(1)
    if len(tries) < 3:
        raise KeyError("missing")
    return "ok"
"""


def test_a_blocking_call_whose_invocation_backs_off_is_explained_at_once(write_app, dev_server):
    srv = dev_server(write_app(FLAKY))
    answer: dict = {}

    def call() -> None:
        answer["r"] = httpx.post(srv.url + "/Flaky/go", timeout=60)

    caller = threading.Thread(target=call)
    caller.start()
    # within a second of the failure the console names the invocation and the error
    line = wait_for(
        lambda: next((x for x in srv.log().splitlines() if "KeyError" in x), None),
        timeout=1.5,
        what="the console line",
    )
    assert "Flaky/go inv_" in line
    caller.join(30)
    assert answer["r"].status_code == 200 and answer["r"].json() == "ok"  # nothing lost


def _dev(app: Path, port: int, admin_port: int, store: Path, cwd: Path):
    return subprocess.run(
        [sys.executable, "-m", "durable.devtool.cli", "dev", str(app), "--no-reload"]
        + ["--port", str(port), "--admin-port", str(admin_port), "--store", str(store)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_port_conflicts_name_both_ports_and_the_durable_holder(write_app, dev_server, tmp_path):
    path = write_app(GOOD)
    srv = dev_server(path)
    r = _dev(path, srv.port, srv.admin_port, Path(srv.store), tmp_path)
    assert r.returncode == 1
    said = " ".join(r.stderr.split())
    assert (
        f"cannot listen for the ingress on 127.0.0.1:{srv.port} nor for the admin API on "
        f"127.0.0.1:{srv.admin_port}" in said
    ), said
    assert f"durable PID {srv.proc.pid} (admin API at {srv.admin_url}) already runs here" in said
    assert "pick other ports with --port and --admin-port" in said
    # two ports another program holds: both named at once, no durable to name
    with socket.socket() as a, socket.socket() as b:
        for s in (a, b):
            s.bind(("127.0.0.1", 0))
            s.listen()
        pa, pb = a.getsockname()[1], b.getsockname()[1]
        r = _dev(path, pa, pb, tmp_path / "other.duckdb", tmp_path)
    said = " ".join(r.stderr.split())
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"127.0.0.1:{pa} nor for the admin API on 127.0.0.1:{pb}" in said, said
    assert "another program uses them; pick other ports with --port and --admin-port" in said


def test_a_worker_that_dies_while_loading_and_a_bad_retry_policy_say_why(write_app, dev_server):
    path = write_app(GOOD)
    srv = dev_server(path)

    def app_error(expected: str) -> dict:
        def check():
            e = httpx.get(srv.admin_url + "/api/services", timeout=5).json()["app_error"]
            return e if e and expected in e["error"] else None

        return wait_for(check, what=f"an app error saying {expected!r}")

    # the worker ends before its Hello: its exit code, not "no Hello within 60 s"
    path.write_text("import os\nos._exit(3)\n" + GOOD)
    assert "the worker exited (code 3) before it loaded the app" in app_error("exited")["error"]
    # a RetryPolicy given a float where a timedelta belongs: said at definition time
    path.write_text(
        GOOD.replace(
            'Service("Signup")',
            'Service("Signup", retry_policy=RetryPolicy(initial_interval=0.01))',
        ).replace("import Context, Service", "import Context, RetryPolicy, Service")
    )
    error = app_error("timedelta")["error"]
    assert "RetryPolicy(initial_interval=0.01): give a timedelta" in error
    path.write_text(GOOD)
    wait_for(
        lambda: httpx.get(srv.admin_url + "/api/services", timeout=5).json()["app_error"] is None,
        what="the app to load again",
    )
    assert httpx.post(srv.url + "/Signup/ping", timeout=10).json() == "pong"
