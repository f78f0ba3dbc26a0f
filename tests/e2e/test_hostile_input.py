"""Every hostile input is a clear 4xx that leaves nothing behind, against a real runtime.

One ``durable dev`` process serves the module. Each refused request must answer 4xx with
a JSON ``{"code", "message"}`` (the dashboard: an HTML error page), create no invocation
and hold nothing in the engine's memory (the admin API's health counts and the store's
invocation count are unchanged). Values a handler makes that the journal could not store
fail that invocation with a clear message, and the store goes on working. Last, poison
requests beside acknowledged ``/send``s, a kill -9 and a restart lose nothing.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

APP = """
from durable import Context, ObjectContext, Service, VirtualObject

echo = Service("Echo")

@echo.handler()
async def say(ctx: Context, value):
    return value

@echo.handler()
async def nan(ctx: Context) -> float:
    return float("nan")

@echo.handler()
async def run_surrogate(ctx: Context) -> str:
    return await ctx.run("make", lambda: "bad \\ud800 text")

@echo.handler()
async def wait(ctx: Context) -> object:
    _, promise = ctx.awakeable()
    return await promise

counter = VirtualObject("Counter")

@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    c = (await ctx.get("c") or 0) + n
    ctx.set("c", c)
    return c

@counter.handler()
async def set_nan(ctx: ObjectContext) -> None:
    ctx.set("c", float("inf"))
"""

DEEP = b"[" * 1000 + b"]" * 1000
DEEPISH = b"[" * 101 + b"]" * 101
JSON = {"content-type": "application/json"}


def _dev_server_class(config: pytest.Config) -> type:
    root = Path(__file__).resolve().parents[1] / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == root:
            return plugin.DevServer
    raise RuntimeError("tests/conftest.py is not loaded")


@pytest.fixture(scope="module")
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    folder = tmp_path_factory.mktemp("hostile")
    app = folder / "app.py"
    app.write_text(textwrap.dedent(APP))
    server = _dev_server_class(request.config)(
        app, folder / "store" / "durable.duckdb", folder, ["--no-reload"]
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def footprint(srv: Any, http: httpx.Client) -> tuple[dict[str, int], int, int]:
    """What the runtime holds: the engine's counts, waiting clients, stored invocations."""
    health = http.get(srv.admin_url + "/health").json()
    total = http.get(srv.admin_url + "/api/invocations", params={"count": "1"}).json()["total"]
    return health["counts"], health["waiting_clients"], total


def refused(srv: Any, http: httpx.Client, method: str, url: str, status: int, **kw: Any) -> str:
    """Send one hostile request; assert its 4xx JSON answer and that nothing changed."""
    before = footprint(srv, http)
    r = http.request(method, url, **kw)
    assert r.status_code == status, (url, r.status_code, r.text[:300])
    body = r.json()
    assert body["code"] == status and isinstance(body["message"], str) and body["message"]
    assert footprint(srv, http) == before
    return body["message"]


# ---------------------------------------------------------------------------- ingress bodies
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'"\\ud800"', "surrogate"),
        (b'{"\\udfff": 1}', "surrogate"),
        (b'[1, {"a": ["x\\udbff"]}]', "surrogate"),
        (b"NaN", "NaN is not JSON"),
        (b"[Infinity]", "Infinity is not JSON"),
        (b"[1e400]", "too large"),
        (DEEP, "levels deep"),
        (DEEPISH, "levels deep"),
        (b"\xff\xfe", "not valid JSON"),
    ],
    ids=["surrogate", "key", "nested", "nan", "inf", "1e400", "deep1000", "deep101", "utf8"],
)
@pytest.mark.parametrize("path", ["/Echo/say", "/Echo/say/send", "/Counter/k/add/send"])
def test_unstorable_bodies_are_400(srv, http, path: str, body: bytes, why: str) -> None:
    message = refused(srv, http, "POST", srv.url + path, 400, content=body, headers=JSON)
    assert why in message


def test_ordinary_unicode_still_round_trips(srv, http) -> None:
    for text in ('"\\ud83d\\ude00"', '"é ü 😀"', '{"k": [[[["deep enough"]]]]}'):
        r = http.post(srv.url + "/Echo/say", content=text.encode(), headers=JSON)
        assert r.status_code == 200 and r.json() == httpx.Response(200, content=text).json()


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("delay=99999999999999d", "too long"),
        ("delay=" + "9" * 400, "characters"),
        ("delay=" + "9" * 5000, "characters"),
        ("delay=3651d", "at most 3650 days"),
        ("delay=1e5s", "bad delay"),
    ],
    ids=["huge", "400digits", "5000digits", "3651d", "exponent"],
)
def test_bad_delays_are_400(srv, http, query: str, why: str) -> None:
    url = f"{srv.url}/Echo/say/send?{query}"
    assert why in refused(srv, http, "POST", url, 400, content=b"1", headers=JSON)


def test_oversize_and_too_many_headers_are_400(srv, http) -> None:
    big = {**JSON, "x-big": "a" * 1_000_000}
    assert "bytes" in refused(
        srv, http, "POST", srv.url + "/Echo/say", 400, content=b"1", headers=big
    )
    many = [("content-type", "application/json")] + [(f"x-h{i}", "v") for i in range(2000)]
    url = srv.url + "/Echo/say/send"
    assert "headers" in refused(srv, http, "POST", url, 400, content=b"1", headers=many)
    long_key = srv.url + "/Counter/" + "k" * 5000 + "/add"
    assert "key" in refused(srv, http, "POST", long_key, 400, content=b"1", headers=JSON)


# ---------------------------------------------------------------------------- Host, Origin
@pytest.mark.parametrize(
    "headers",
    [
        {"host": "evil.example"},
        {"host": "evil.example:8080"},
        {"origin": "http://evil.example", "content-type": "text/plain"},
        {"origin": "null", "content-type": "text/plain"},
        {"referer": "http://evil.example/page", "content-type": "text/plain"},
    ],
)
def test_foreign_sites_cannot_invoke_or_resolve(srv, http, headers: dict[str, str]) -> None:
    assert refused(srv, http, "POST", srv.url + "/Echo/say", 403, content=b"1", headers=headers)
    url = srv.url + "/restate/awakeables/sign_1abc/resolve"
    refused(srv, http, "POST", url, 403, content=b"1", headers=headers)
    # reading an output by rebinding DNS is refused too
    if "host" in headers:
        url = srv.url + "/restate/invocation/inv_01m8yfxkkjc448cha0jewj0vyx/output"
        refused(srv, http, "GET", url, 403, headers=headers)


def test_https_origin_of_the_same_host_and_port_is_foreign(srv, http) -> None:
    origin = srv.url.replace("http://", "https://")
    h = {"origin": origin, "content-type": "text/plain"}
    refused(srv, http, "POST", srv.url + "/Echo/say", 403, content=b"1", headers=h)


def test_clients_outside_browsers_keep_working(srv, http) -> None:
    port = srv.url.rsplit(":", 1)[1]
    for headers in (
        {},
        {"host": f"localhost:{port}"},
        {"host": f"[::1]:{port}"},
        {"origin": srv.url},  # the ingress's own origin
        {"idempotency-key": "x" * 1000},
    ):
        r = http.post(srv.url + "/Echo/say", json="hi", headers=headers)
        assert r.status_code == 200 and r.json() == "hi", (headers, r.text)


# ---------------------------------------------------------------------------- handler values
def _wait_done(srv: Any, http: httpx.Client, inv_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        inv = http.get(f"{srv.admin_url}/api/invocations/{inv_id}").json()
        if inv["status"] in ("completed", "failed"):
            return inv
        time.sleep(0.05)
    raise AssertionError(f"{inv_id} did not finish: {inv['status']}")


@pytest.mark.parametrize(
    ("path", "why"),
    [("/Echo/nan", "NaN or infinite"), ("/Counter/k/set_nan", "NaN or infinite")],
)
def test_unstorable_outputs_fail_the_invocation_and_the_store_goes_on(
    srv, http, path: str, why: str
) -> None:
    r = http.post(srv.url + path)
    assert r.status_code == 500 and why in r.json()["message"], r.text
    inv_id = http.post(srv.url + path + "/send").json()["invocationId"]
    inv = _wait_done(srv, http, inv_id)
    assert inv["status"] == "failed", inv
    assert inv["failure_code"] == 500 and why in inv["failure_message"], inv
    assert http.post(srv.url + "/Echo/say", json=1).json() == 1  # the store still writes


def test_unstorable_run_result_fails_the_attempt_with_a_clear_error(srv, http) -> None:
    inv_id = http.post(srv.url + "/Echo/run_surrogate/send").json()["invocationId"]
    deadline = time.monotonic() + 20
    while True:
        inv = http.get(f"{srv.admin_url}/api/invocations/{inv_id}").json()
        said = f"{inv.get('last_error')} {inv.get('failure')}"
        if "surrogate" in said:
            break
        assert time.monotonic() < deadline, inv
        time.sleep(0.05)
    # a value the store cannot hold fails the step for good (as a serde refusal does):
    # retrying the body would make the same value again
    assert inv["status"] == "failed", inv
    assert inv["attempts"] and "app.py:" in inv["attempts"][-1]["location"]
    assert http.post(srv.url + "/Echo/say", json=2).json() == 2


# ---------------------------------------------------------------------------- admin API
@pytest.mark.parametrize(
    "query",
    [
        "since=99999999999999d",
        "until=99999999999999d",
        "since=" + "9" * 400 + "d",
        "limit=" + "9" * 30,
        "limit=1e400",
        "status=nope",
    ],
    ids=["since", "until", "since-digits", "limit-digits", "limit-float", "status"],
)
def test_admin_reads_refuse_bad_parameters(srv, http, query: str) -> None:
    refused(srv, http, "GET", f"{srv.admin_url}/api/invocations?{query}", 400)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/sql", b'{"sql": "select 1", "limit": 1e400}'),
        ("/api/sql", b'{"sql": "select \'\\ud800\'"}'),
        ("/api/sql", b'{"sql": "select 1", "timeout": NaN}'),
        ("/api/sql", b'{"sql": "select 1", "timeout": 1e999}'),
        ("/api/sql", b'{"sql": "select 1", "timeout": -1}'),
        ("/api/sql", b'{"sql": "select 1", "timeout": 60}'),
        ("/api/sql", b'{"sql": "select 1", "limit": -1}'),
        ("/api/sql", DEEP),
        ("/api/state/Counter/k", b'{"name": "\\ud800", "value": 1}'),
        ("/api/state/Counter/k", b'{"name": "c", "value": "\\udc00"}'),
        ("/api/state/Counter/k", b'{"name": "c", "value": NaN}'),
        ("/api/awakeables/sign_1abc/resolve", b'"\\ud800"'),
        ("/api/awakeables/sign_1abc/resolve", b"[1e400]"),
        ("/api/promises/resolve", b'{"service": "W", "key": "k", "name": "p", "value": NaN}'),
        ("/api/invocations/bulk", b'{"action": "kill", "filter": {"since": "99999999999999d"}}'),
        ("/api/invocations/bulk", b'{"action": "kill", "filter": {"service": ["x"]}}'),
        ("/api/replay", b'{"ids": [], "timeout": NaN}'),
        ("/api/sql", b"\xff"),
    ],
    ids=lambda v: v if isinstance(v, str) else v[:40].decode("latin-1"),
)
def test_admin_bodies_refuse_what_cannot_be_stored(srv, http, path: str, body: bytes) -> None:
    refused(srv, http, "POST", srv.admin_url + path, 400, content=body, headers=JSON)


def test_admin_state_entry_and_paging_are_checked(srv, http) -> None:
    inv = "inv_01m8yfxkkjc448cha0jewj0vyx"
    url = f"{srv.admin_url}/api/state/Counter/k?invocation={inv}&entry=" + "9" * 30
    refused(srv, http, "GET", url, 400)
    r = http.get(srv.admin_url + "/api/invocations", params={"after": "zzz", "before": "\x00"})
    assert r.status_code in (200, 400), r.text


def test_sql_time_limit_and_byte_cap(srv, http) -> None:
    t0 = time.monotonic()
    r = http.post(
        srv.admin_url + "/api/sql",
        json={"sql": "select count(*) from range(1000000000000)", "timeout": 0.5},
    )
    assert r.status_code == 400 and "stopped" in r.json()["message"]
    assert time.monotonic() - t0 < 8
    r = http.post(
        srv.admin_url + "/api/sql", json={"sql": "select repeat('x', 5000000) from range(8)"}
    )
    out = r.json()
    assert r.status_code == 200 and out["truncated"] and out["truncated_by"] == "bytes", out
    assert len(out["rows"]) == 3


def test_admin_origin_rule_is_the_dashboards(srv, http) -> None:
    sql = srv.admin_url + "/api/sql"
    body = b'{"sql": "select 1"}'
    https = srv.admin_url.replace("http://", "https://")
    for headers in (
        {"origin": https},
        {"origin": "null"},
        {"origin": "http://evil.example"},
        {"referer": "http://evil.example/x"},
        {"referer": https + "/sql"},
    ):
        refused(srv, http, "POST", sql, 403, content=body, headers=headers)
    for headers in ({}, {"origin": srv.admin_url}, {"referer": srv.admin_url + "/sql"}):
        assert http.post(sql, content=body, headers=headers).status_code == 200, headers


# ---------------------------------------------------------------------------- dashboard forms
@pytest.mark.parametrize(
    ("path", "kw"),
    [
        ("/services/Echo/say", {"content": b"value=\xff\xfe"}),
        ("/state/set", {"content": b"service=Counter&key=%ED%A0%80&name=c&value=1"}),
        ("/services/Echo/say", {"files": {"value": ("a.txt", b"1")}}),
        ("/services/Echo/say", {"data": {"raw_json": "NaN"}}),
        ("/services/Echo/say", {"data": {"raw_json": '"\\ud800"'}}),
        ("/services/Echo/say", {"data": {"raw_json": "[" * 1000}}),
        ("/services/Echo/say", {"data": {"value": "[1e400]"}}),
        ("/services/Echo/say", {"data": {"mode": "send", "delay": "99999999999999d"}}),
        ("/services/Counter/add", {"data": {"key": "k" * 5000, "value": "1"}}),
        ("/state/set", {"data": {"service": "Counter", "key": "k", "name": "c", "value": "NaN"}}),
        ("/awakeables/sign_1abc/resolve", {"data": {"value": '"\\udfff"'}}),
        ("/awakeables/sign_1abc/reject", {"data": {"code": "9" * 5000}}),
        ("/invocations/bulk", {"data": {"action": "kill", "since": "99999999999999d"}}),
    ],
)
def test_dashboard_forms_refuse_hostile_input(srv, http, path: str, kw: dict[str, Any]) -> None:
    before = footprint(srv, http)
    headers = {"origin": srv.admin_url}
    if "content" in kw:
        headers["content-type"] = "application/x-www-form-urlencoded"
    r = http.post(srv.admin_url + path, headers=headers, **kw)
    assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:300])
    assert footprint(srv, http) == before


# ---------------------------------------------------------------------------- nothing lost
def test_poison_beside_acknowledged_sends_survives_kill_9(write_app, dev_server) -> None:
    server = dev_server(write_app(APP), extra=["--no-reload"])
    acked: list[str] = []
    with httpx.Client(timeout=30) as c:
        for i in range(100):
            r = c.post(f"{server.url}/Counter/k{i % 7}/add/send", json=1)
            assert r.status_code == 202, r.text
            acked.append(r.json()["invocationId"])
            if i % 20 == 10:  # five poison requests among them
                bad = c.post(f"{server.url}/Echo/say/send", content=b'["\\ud800"]', headers=JSON)
                assert bad.status_code == 400, bad.text
    server.kill()
    server.start()
    with httpx.Client(timeout=30) as c:
        deadline = time.monotonic() + 60
        missing = list(acked)
        while missing and time.monotonic() < deadline:
            still = []
            for inv_id in missing:
                r = c.get(f"{server.admin_url}/api/invocations/{inv_id}")
                if r.status_code != 200 or r.json()["status"] != "completed":
                    still.append(inv_id)
            missing = still
            if missing:
                time.sleep(0.2)
        assert not missing, f"{len(missing)} acknowledged invocations lost or not completed"
        total = sum(
            c.get(f"{server.admin_url}/api/state/Counter/k{k}").json()["state"].get("c", 0)
            for k in range(7)
        )
        assert total == 100
