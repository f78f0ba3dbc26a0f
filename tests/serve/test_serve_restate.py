"""`durable serve` on a real Restate 1.7: a durable-import app served by the real
restate-sdk, registered with a real restate-server, called over Restate's ingress.

One server and one `durable serve` process for the module; each test calls handlers of
tests/serve/serve_app.py that exercise one part of durable's Context API.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.restate_server import AppProcess, RestateServer, clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def serve_env() -> dict[str, str]:
    """This worktree's `durable` (its .pyroot) and nothing else on the path."""
    return clean_env(PYTHONPATH=str(ROOT / ".pyroot"))


def serve_process(app_dir: Path, app: str, *extra: str) -> AppProcess:
    cmd = [sys.executable, "-m", "durable.devtool.cli", "serve", app, "--port", "{port}"]
    return AppProcess([*cmd, *extra], app_dir, env=serve_env(), name="serve")


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("serve-app")
    shutil.copy(HERE / "serve_app.py", d / "serve_app.py")
    return d


@pytest.fixture(scope="module", params=["http2", "http1"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, app_dir: Path
) -> Iterator[Any]:
    """A server and `durable serve` on it: HTTP/2 (bidirectional), then --http1
    (request-response: each wait on Restate ends the attempt, so every later step is
    replayed from the journal, through the adapter)."""
    http1 = request.param == "http1"
    server = RestateServer(tmp_path_factory.mktemp("restate"))
    app = serve_process(app_dir, "serve_app.py", *(["--http1"] if http1 else []))
    try:
        server.start()
        app.start()
        server.register(app.url, http11=http1)
        yield server, app, http1
    finally:
        app.stop()
        server.stop()


@pytest.fixture(scope="module")
def server(cluster: Any) -> RestateServer:
    return cluster[0]


def call(server: RestateServer, path: str, body: Any = None, **kw: Any) -> httpx.Response:
    if body is None:
        return httpx.post(f"{server.ingress_url}/{path}", timeout=60, **kw)
    return httpx.post(f"{server.ingress_url}/{path}", json=body, timeout=60, **kw)


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    return r.json() if r.content else None


def send(server: RestateServer, path: str, body: Any = None) -> str:
    r = call(server, path + "/send", body)
    assert r.status_code == 202, f"{r.status_code} {r.text}"
    return str(r.json()["invocationId"])


def attach(server: RestateServer, inv_id: str) -> Any:
    r = httpx.get(f"{server.ingress_url}/restate/invocation/{inv_id}/attach", timeout=30)
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    return r.json()


def wait_for(fn: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("not true in time")


def test_the_banner_and_health(cluster: Any) -> None:
    _, app, http1 = cluster
    assert httpx.get(app.url + "/health", timeout=5).status_code == 200
    log = app.log()
    mode = "HTTP/1.1 request-response" if http1 else "HTTP/2, bidirectional"
    assert f"a Restate deployment at {app.url} ({mode})" in log
    assert f"durable deploy {app.url} --admin http://127.0.0.1:9070" in log
    assert f"restate deployments register {app.url}" + (" --use-http1.1" if http1 else "") in log
    assert "virtual object Counter: add, get" in log


def test_discovered_names_kinds_and_policies(server: RestateServer) -> None:
    r = httpx.get(f"{server.admin_url}/services", timeout=10)
    services = {s["name"]: s for s in r.json()["services"]}
    assert services["Tools"]["ty"] == "Service"
    assert services["Counter"]["ty"] == "VirtualObject"
    assert services["Signup"]["ty"] == "Workflow"
    kinds = {h["name"]: h["ty"] for h in services["Counter"]["handlers"]}
    assert kinds["add"] == "Exclusive" and kinds["get"] == "Shared"
    wf = {h["name"]: h["ty"] for h in services["Signup"]["handlers"]}
    assert wf["run"] == "Workflow" and wf["confirm"] == "Shared"
    assert services["Tools"]["retry_policy"] == {
        "initial_interval": "20ms",
        "exponentiation_factor": 2.0,
        "max_attempts": 10,
        "max_interval": "10s",
        "on_max_attempts": "Pause",
    }
    retried = next(h for h in services["Tools"]["handlers"] if h["name"] == "retried")
    assert retried["retry_policy"]["max_attempts"] == 2**31 - 1  # "forever", as Restate takes it
    assert services["Signup"]["workflow_completion_retention"] == "1h"
    echo = next(h for h in services["Tools"]["handlers"] if h["name"] == "echo")
    assert echo["input_json_schema"]["properties"]["name"] == {"type": "string"}


def test_json_shapes_none_and_input_errors(server: RestateServer) -> None:
    assert ok(call(server, "Tools/echo", {"name": "pen", "qty": 2})) == {"name": "PEN", "qty": 3}
    r = call(server, "Tools/nothing")
    assert r.status_code == 200 and r.content == b""
    r = call(server, "Tools/echo", {"qty": "x"})
    assert r.status_code == 400, r.text
    assert "invalid input for Tools/echo" in r.json()["message"]


def test_handler_serdes_carry_bytes(server: RestateServer) -> None:
    r = call(server, "Tools/shout", content=b"hi there", headers={"content-type": "text/plain"})
    assert r.status_code == 200 and r.content == b"HI THERE!", r.text
    assert r.headers["content-type"] == "text/plain"


def test_terminal_errors_reach_the_caller(server: RestateServer) -> None:
    r = call(server, "Tools/fail", 404)
    assert r.status_code == 404
    assert r.json()["message"] == "failed with 404"


def test_retryable_error_is_retried(server: RestateServer) -> None:
    assert ok(call(server, "Tools/retried", "k1")) == 3


def test_run_random_time_and_request(server: RestateServer) -> None:
    out = ok(call(server, "Tools/runs", "r1"))
    assert out == {
        "thread_is_main": False,
        "item": ["Item", "box", 7],
        "two": 42,
        "flaky": ["ok", 3],
        "doomed": "TerminalError:500",
        "refused": "422:refused in the body",
        "kw": 3,
        "random": True,
        "uuid": 36,
        "time": True,
        "request": [True, True, '"r1"'],
        "request_repr": True,
    }
    inv = server.query("SELECT id FROM sys_invocation WHERE target_handler_name = 'runs' LIMIT 1")[
        0
    ]["id"]
    rows = server.query(f"SELECT entry_json FROM sys_journal WHERE id = '{inv}'")
    journal = " ".join(r["entry_json"] or "" for r in rows)
    assert '"typed"' in journal and '"flaky"' in journal  # each ctx.run is a journal entry


def test_durable_dev_only_features_are_terminal_errors(server: RestateServer) -> None:
    r = call(server, "Tools/attempt")
    assert r.status_code == 501
    assert "ctx.request().attempt is durable dev only" in r.json()["message"]
    r = call(server, "Tools/scope")
    assert r.status_code == 501 and "ctx.scope()" in r.json()["message"]


def test_calls_sends_attach_and_idempotency(server: RestateServer) -> None:
    out = ok(call(server, "Tools/calls", "c1"))
    assert out == {
        "item": ["A", 2],
        "total": 5,
        "raw": '{"name":"RAW","qty":3}',
        "generic": 5,
        "failed": "TerminalError:418:failed with 418",
        "callee": True,
        "header": "yes",
        "shouted": "ABC!",
        "attached": ["Item", "SENT", 1],
    }
    # the delayed send lands later; the idempotent pair adds once
    wait_for(lambda: ok(call(server, "Counter/c1/get")) == 105)
    assert wait_for(lambda: ok(call(server, "Counter/c1-idem/get"))) == 1


def test_combinators(server: RestateServer) -> None:
    out = ok(call(server, "Tools/combinators"))
    assert out == {
        "gathered": [1, 2],
        "selected": "timer",
        "wait_completed": [1, 1, True],
        "as_completed": ["x", None],
        "with_timeout": "408:408",
        "method": "done",
        "sleep_future": True,
    }


def test_state_of_an_object(server: RestateServer) -> None:
    out = ok(call(server, "Counter/s1/state"))
    assert out == {
        "key": "s1",
        "item": ["Item", "kept"],
        "keys": [["gone", "item"], ["item"]],
        "gone": None,
    }
    rows = server.query(
        "SELECT key, value_utf8 FROM state WHERE service_name = 'Counter' AND service_key = 's1'"
    )
    assert rows == [{"key": "item", "value_utf8": '{"name":"kept","qty":2}'}]
    assert ok(call(server, "Counter/s1/wipe")) == [[], None]
    r = call(server, "Counter/s1/write_shared")
    assert r.status_code == 500 and "shared handlers only read state" in r.json()["message"]


def _awakeable_of(server: RestateServer, key: str) -> str:
    return wait_for(lambda: ok(call(server, f"Counter/{key}/awakeable_id")))


def test_awakeables_resolved_from_outside_and_by_ctx(cluster: Any) -> None:
    server, app, _ = cluster
    inv = send(server, "Counter/a1/wait_awakeable")
    awk = _awakeable_of(server, "a1")
    r = httpx.post(
        f"{server.ingress_url}/restate/awakeables/{awk}/resolve",
        json={"name": "outside", "qty": 9},
        timeout=10,
    )
    assert r.status_code in (200, 202), r.text
    assert attach(server, inv) == ["Item", "outside", 9]
    # durable.getLogger() is quiet while restate replays (--http1 replays after the wait)
    assert app.log().count(f"waiting on {awk}") == 1

    inv = send(server, "Counter/a2/wait_awakeable")
    ok(call(server, "Tools/resolve", [_awakeable_of(server, "a2"), "resolve"]))
    assert attach(server, inv) == ["Item", "by ctx", 3]

    inv = send(server, "Counter/a3/wait_awakeable")
    ok(call(server, "Tools/resolve", [_awakeable_of(server, "a3"), "reject"]))
    assert attach(server, inv) == "rejected 410 no stock"


def test_cancellation_reaches_the_handler_as_a_409(server: RestateServer) -> None:
    inv = send(server, "Counter/x1/saga")
    wait_for(
        lambda: (
            server.query(f"SELECT status FROM sys_invocation WHERE id = '{inv}'")[0]["status"]
            in ("suspended", "running", "backing-off")
        )
    )
    ok(call(server, "Tools/cancel", inv))
    assert wait_for(lambda: ok(call(server, "Counter/x1/compensated"))) == "CancelledError:409"


def test_cancelling_a_call_and_a_send_from_the_handler(server: RestateServer) -> None:
    assert ok(call(server, "Tools/cancels", "y")) == "CancelledError:409"
    assert wait_for(lambda: ok(call(server, "Counter/y-sent/compensated"))) == "CancelledError:409"
    assert ok(call(server, "Counter/y-called/compensated")) == "CancelledError:409"


def test_workflow_promises(server: RestateServer) -> None:
    inv = send(server, "Signup/w1/run", "a@b.c")
    assert wait_for(lambda: ok(call(server, "Signup/w1/email"))) == "a@b.c"
    assert ok(call(server, "Signup/w1/peek")) is None
    ok(call(server, "Signup/w1/confirm", {"name": "yes", "qty": 1}))
    assert ok(call(server, "Signup/w1/peek")) == "yes"
    ok(call(server, "Signup/w1/refuse", "not today"))
    assert attach(server, inv) == {
        "email": "a@b.c",
        "item": ["Item", "yes"],
        "second": "403:not today",
    }
    r = call(server, "Signup/w1/run", "again")
    assert r.status_code == 409


def test_sigterm_stops_it_cleanly(app_dir: Path) -> None:
    app = serve_process(app_dir, "serve_app.py").start()
    assert app.proc is not None
    app.stop()
    assert app.proc.returncode == 0, app.log()
