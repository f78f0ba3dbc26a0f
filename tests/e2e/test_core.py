"""The core over real HTTP against a real `durable dev` process and DuckDB file."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

APP = """
import os
from durable import Service, Context, TerminalError, RetryPolicy
from datetime import timedelta

greeter = Service("Greeter")

@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    return await ctx.run("greeting", lambda: f"Hello {name}!")

@greeter.handler()
async def fail(ctx: Context, msg: str) -> None:
    raise TerminalError(msg, 422)

@greeter.handler()
async def nothing(ctx: Context) -> dict:
    return {"ok": True}

flaky = Service("Flaky", retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=300),
                                                  max_interval=timedelta(milliseconds=300), max_attempts=3))

@flaky.handler()
async def boom(ctx: Context) -> None:
    raise ValueError("boom on purpose")

@flaky.handler()
async def die(ctx: Context) -> None:
    os._exit(3)
"""


def test_call_send_output_and_idempotency(write_app, dev_server):
    srv = dev_server(write_app(APP))
    with srv.client() as c:
        r = c.post("/Greeter/greet", json="Ann")
        assert r.status_code == 200 and r.json() == "Hello Ann!"
        assert c.post("/Greeter/nothing").json() == {"ok": True}
        r = c.post("/Greeter/greet/send", json="Bob")
        assert r.status_code == 202 and r.json()["status"] == "Accepted"
        inv = r.json()["invocationId"]
        assert c.get(f"/restate/invocation/{inv}/attach").json() == "Hello Bob!"
        assert c.get(f"/restate/invocation/{inv}/output").json() == "Hello Bob!"
        # idempotency: the same key gives the same invocation and result
        h = {"Idempotency-Key": "k-1"}
        a = c.post("/Greeter/greet/send", json="Cy", headers=h).json()
        b = c.post("/Greeter/greet/send", json="Cy", headers=h).json()
        assert a["invocationId"] == b["invocationId"] and b["status"] == "PreviouslyAccepted"
        assert c.post("/Greeter/greet", json="Cy", headers=h).json() == "Hello Cy!"


def test_errors_are_clear_4xx_and_nothing_crashes(write_app, dev_server):
    srv = dev_server(write_app(APP), extra=["--max-body", "1000"])
    with srv.client() as c:
        cases = [
            (c.post("/Nope/greet", json="x"), 404, "unknown service"),
            (c.post("/Greeter/nope", json="x"), 404, "no handler"),
            (c.post("/Greeter/greet", content=b"{not json"), 400, "not valid JSON"),
            (c.post("/Greeter/greet", json=5), 400, "invalid input"),
            (c.post("/Greeter/greet", content=b"\xff\xfe"), 400, "not valid JSON"),
            (c.post("/Greeter/greet", json="x" * 2000), 413, "over the limit"),
            (c.get("/restate/invocation/inv_doesnotexist/output"), 400, "malformed"),
            (
                c.get("/restate/invocation/inv_00000000000000000000000000/output"),
                404,
                "unknown invocation",
            ),
            (c.post("/Greeter/fail", json="bad order"), 422, "bad order"),
            (c.post("/Greeter/greet/send?delay=soon", json="x"), 400, "bad delay"),
            (c.get("/Greeter/greet"), 405, "POST"),
        ]
        for r, status, text in cases:
            assert r.status_code == status, (r.request.url, r.text)
            body = r.json()
            assert body["code"] == status or status == 422
            assert text in body["message"], body
        # still healthy and serving
        assert c.post("/Greeter/greet", json="Ann").json() == "Hello Ann!"


def _status(srv, inv: str) -> dict:
    import duckdb  # noqa: F401  (the store is held by the runtime: ask the engine via HTTP)

    return httpx.get(f"{srv.admin_url}/api/invocations/{inv}", timeout=10).json()


def test_retries_back_off_then_pause(write_app, dev_server):
    srv = dev_server(write_app(APP))
    with srv.client() as c:
        inv = c.post("/Flaky/boom/send").json()["invocationId"]
        seen = set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            body = _status(srv, inv)
            seen.add(body["status"])
            if body["status"] == "paused":
                break
            time.sleep(0.01)
        assert "backing-off" in seen or "running" in seen
        assert body["status"] == "paused", body
        assert body["attempt"] == 3
        assert "boom on purpose" in body["last_error"]
        assert "ValueError" in body["last_error_stack"]
        assert c.get(f"/restate/invocation/{inv}/output").status_code == 470
        # the runtime itself is fine
        assert c.post("/Greeter/greet", json="Ann").json() == "Hello Ann!"


def test_worker_dying_does_not_take_the_runtime_down(write_app, dev_server):
    srv = dev_server(write_app(APP))
    with srv.client() as c:
        inv = c.post("/Flaky/die/send").json()["invocationId"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _status(srv, inv)["status"] == "paused":
                break
            time.sleep(0.05)
        body = _status(srv, inv)
        assert body["status"] == "paused" and "worker process died" in body["last_error"]
        assert srv.proc.poll() is None
        # the restarted worker serves
        assert c.post("/Greeter/greet", json="Ann").json() == "Hello Ann!"
    assert "restarting" in srv.log()


def test_second_runtime_on_the_same_store_fails_clearly(write_app, dev_server, tmp_path):
    import subprocess
    import sys

    srv = dev_server(write_app(APP))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "durable.devtool.cli",
            "dev",
            srv.app,
            "--port",
            "0",
            "--admin-port",
            "0",
            "--store",
            srv.store,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode != 0
    assert "is in use by durable dev" in r.stderr and "Traceback" not in r.stderr
    assert srv.admin_url in r.stderr


def test_inline_mode_runs_handlers_in_the_runtime_process(write_app, dev_server):
    srv = dev_server(write_app(APP), extra=["--inline"])
    with srv.client() as c:
        assert c.post("/Greeter/greet", json="Ann").json() == "Hello Ann!"
        r = c.post("/Flaky/boom/send")
        assert r.status_code == 202
    assert "inline" in srv.log()


def test_dev_with_no_app_serves_the_bundled_example(dev_server, tmp_path):
    from durable.devtool.discovery import bundled_example

    srv = dev_server(bundled_example())
    with srv.client() as c:
        assert c.post("/Greeter/greet", json="Ann").status_code == 200
        assert c.post("/Counter/a%2Fb c/add", json=2).json() == 2
        assert c.post("/Counter/a%2Fb c/add", json=3).json() == 5


def test_memory_store_serves_and_says_so(write_app, dev_server):
    srv = dev_server(write_app(APP), store=":memory:")
    with srv.client() as c:
        assert c.post("/Greeter/greet", json="Ann").json() == "Hello Ann!"
    assert "in memory" in srv.log()


def test_an_ipv6_loopback_runtime_names_itself_with_brackets(write_app, tmp_path):
    import subprocess
    import sys

    from tests.conftest import free_port

    port, admin = free_port(), free_port()
    log = open(tmp_path / "dev.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "durable.devtool.cli", "dev", str(write_app(APP))),
            *("--host", "::1", "--port", str(port), "--admin-port", str(admin)),
            *("--store", str(tmp_path / "s" / "durable.duckdb"), "--no-reload"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://[::1]:{admin}/api/health", timeout=2).json()
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "dev.log"
                ).read_text()
                time.sleep(0.1)
        assert health["admin_url"] == f"http://[::1]:{admin}"
        assert health["ingress_url"] == f"http://[::1]:{port}"
        r = httpx.post(f"http://[::1]:{port}/Greeter/greet", json="six", timeout=30)
        assert r.json() == "Hello six!"
        # the admin server knows its own bracketed name, and still refuses other sites
        assert httpx.get(f"http://[::1]:{admin}/api/invocations", timeout=10).is_success
        other = httpx.get(
            f"http://[::1]:{admin}/api/invocations", headers={"Host": "evil.example"}, timeout=10
        )
        assert other.status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
