"""Fuzzing the HTTP edges of a real runtime with hypothesis.

Generated requests (ingress paths, query strings, headers and bodies; admin API JSON
bodies and query strings) must never get a 5xx, the runtime must stay up, and a refused
request (4xx, other than a handler's own refusal of its input) must leave nothing behind: no stored invocation, no waiting client, and
no invocation held in the engine's memory (the admin API's health counts). The runs are
bounded (``max_examples``, a per-example deadline) so the module takes seconds.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import h11
import httpx
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

# method="thread": the signal method raises inside hypothesis, which catches it and goes on
# shrinking or replaying; the thread method ends the run at the limit whatever it is doing
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120, method="thread")]

APP = """
from durable import Context, ObjectContext, Service, VirtualObject, Workflow, WorkflowContext

echo = Service("Echo")

@echo.handler()
async def say(ctx: Context, value):
    return value

counter = VirtualObject("Counter")

@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    c = (await ctx.get("c") or 0) + n
    ctx.set("c", c)
    return c

@counter.handler(kind="shared")
async def peek(ctx) -> int:
    return await ctx.get("c") or 0

signup = Workflow("Signup")

@signup.main()
async def run(ctx: WorkflowContext, email: str) -> str:
    return email
"""

FUZZ = settings(
    max_examples=120,
    deadline=timedelta(seconds=5),
    database=None,
    # no shrinking: each example is several HTTP requests, and the first failing request
    # is shown whole in the assertion message
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _dev_server_class(config: pytest.Config) -> type:
    root = Path(__file__).resolve().parents[1] / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == root:
            return plugin.DevServer
    raise RuntimeError("tests/conftest.py is not loaded")


@pytest.fixture(scope="module")
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    folder = tmp_path_factory.mktemp("fuzz")
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
    with httpx.Client(timeout=10) as c:
        yield c


# ---------------------------------------------------------------------------- strategies
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**30, -(2**63), 2**64, 0, -1])
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["\ud800", "\udfff x", "😀", "99999999999999d", "1e400", "NaN", ""])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """JSON as Python writes it (NaN, Infinity, \\ud800 escapes), deep nests, or bytes."""
    kind = draw(st.sampled_from(["value", "deep", "bytes", "empty"]))
    if kind == "value":
        return json.dumps(draw(values)).encode()
    if kind == "deep":
        n = draw(st.sampled_from([99, 100, 101, 500, 1000, 5000]))
        return b"[" * n + b"]" * n
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    return b""


segment = st.sampled_from(
    ["Echo", "say", "Counter", "add", "peek", "Signup", "run", "send", "restate", "health"]
    + ["invocation", "awakeables", "resolve", "reject", "attach", "output", "workflow"]
    + ["%", "%zz", "%ED%A0%80", "%FF", "..", "", "k" * 5000]
) | st.text(max_size=12).map(lambda t: quote(t, safe=""))

key = st.text(max_size=12).map(lambda t: quote(t, safe="")) | st.sampled_from(["k", "k" * 5000])
#: paths that reach a handler (so bodies, headers and delays are judged), or any path
paths = (
    st.tuples(st.just(["Echo", "say"]), st.sampled_from([[], ["send"]])).map(lambda t: t[0] + t[1])
    | st.tuples(key, st.sampled_from(["add", "peek", "run"]), st.sampled_from([[], ["send"]])).map(
        lambda t: [st_name(t[1]), t[0], t[1], *t[2]]
    )
    | st.lists(segment, min_size=0, max_size=5)
)


header_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=40,
).map(str.strip)
headers = st.dictionaries(
    st.sampled_from(
        ["origin", "referer", "host", "idempotency-key", "content-type", "x-custom"]
        + ["content-length", "transfer-encoding", "x-a", "cookie"]
    ),
    header_value
    | st.sampled_from(
        ["null", "http://evil.example", "https://127.0.0.1", "evil.example", "text/plain"]
    ),
    max_size=4,
).map(lambda h: {k: v.encode("latin-1") for k, v in h.items()})
query = st.dictionaries(
    st.sampled_from(["delay", "x", "delay ", ""]),
    st.text(max_size=10) | st.sampled_from(["10ms", "99999999999999d", "9" * 5000, "-1", "1e5s"]),
    max_size=2,
)


def st_name(handler: str) -> str:
    return "Signup" if handler == "run" else "Counter"


def footprint(srv: Any, http: httpx.Client) -> tuple[dict[str, int], int, int]:
    health = http.get(srv.admin_url + "/health")
    assert health.status_code == 200, "the runtime is down"
    h = health.json()
    total = http.get(srv.admin_url + "/api/invocations", params={"count": "1"}).json()["total"]
    return h["counts"], h["waiting_clients"], total


def idle(counts: dict[str, int]) -> bool:
    return not any(n for status, n in counts.items())


def check(srv: Any, http: httpx.Client, method: str, url: str, **kw: Any) -> None:
    before = footprint(srv, http)
    try:
        r = http.request(method, url, **kw)
    except (httpx.LocalProtocolError, h11.LocalProtocolError):  # the client refused to send it
        # (a drawn content-length that the body contradicts: h11 may raise its own error)
        assume(False)
        return
    assert r.status_code < 500, (method, url, kw, r.status_code, r.text[:300])
    after = footprint(srv, http)
    ran = "invalid input for" in r.text  # accepted, and the handler refused its input
    if 400 <= r.status_code < 500 and not ran:
        assert after[1:] == before[1:], (method, url, r.text[:200])
        if idle(before[0]):
            assert idle(after[0]), (method, url, after[0])


# ---------------------------------------------------------------------------- the tests
@FUZZ
@given(
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]),
    parts=paths,
    q=query,
    h=headers,
    body=json_bodies(),
)
def test_fuzz_ingress(srv, http, method, parts, q, h, body) -> None:
    url = srv.url + "/" + "/".join(parts)
    if q:
        url += "?" + urlencode(q)
    check(srv, http, method, url, headers=h, content=body if method != "GET" else None)


ADMIN_POSTS = [
    "/api/sql",
    "/api/state/Counter/k",
    "/api/invocations/bulk",
    "/api/invocations/inv_01m8yfxkkjc448cha0jewj0vyx/restart",
    "/api/invocations/inv_01m8yfxkkjc448cha0jewj0vyx/replay",
    "/api/invocations/not-an-id/kill",
    "/api/replay",
    "/api/awakeables/sign_1abc/resolve",
    "/api/awakeables/sign_1abc/reject",
    "/api/promises/resolve",
    "/api/promises/reject",
]
admin_keys = st.sampled_from(
    ["sql", "limit", "timeout", "name", "value", "clear", "action", "ids", "filter"]
    + ["dry_run", "from", "kill", "message", "code", "service", "key", "since", "until"]
)


@st.composite
def admin_bodies(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(json_bodies())
    body = draw(st.dictionaries(admin_keys, values, max_size=5))
    if "sql" in body and draw(st.booleans()):
        body["sql"] = draw(st.sampled_from(["select 1", "select n from range(3) t(n)", "x"]))
    if body.get("action") is not None or draw(st.booleans()):
        body["dry_run"] = True  # a bulk action over every invocation would only slow us
    if isinstance(body.get("filter"), dict):
        body["filter"] = {k: v for k, v in body["filter"].items() if isinstance(k, str)}
    return json.dumps(body).encode()


@FUZZ
@given(path=st.sampled_from(ADMIN_POSTS), body=admin_bodies(), h=headers)
def test_fuzz_admin_bodies(srv, http, path, body, h) -> None:
    h = {k: v for k, v in h.items() if k not in ("host", "content-length", "transfer-encoding")}
    check(srv, http, "POST", srv.admin_url + path, content=body, headers=h)


@FUZZ
@given(
    path=st.sampled_from(["/api/invocations", "/api/state/Counter/k", "/api/awakeables"]),
    params=st.dictionaries(
        st.sampled_from(["since", "until", "limit", "after", "before", "status", "q"])
        | st.sampled_from(["order", "count", "invocation", "entry", "service", "key"]),
        st.text(max_size=12)
        | st.sampled_from(["99999999999999d", "9" * 400, "1e400", "-1", "inv_" + "0" * 26]),
        max_size=4,
    ),
)
def test_fuzz_admin_queries(srv, http, path, params) -> None:
    check(srv, http, "GET", srv.admin_url + path + "?" + urlencode(params))


def test_runtime_still_serves_after_the_fuzz(srv, http) -> None:
    assert http.post(srv.url + "/Echo/say", json="still here").json() == "still here"
    assert http.get(srv.admin_url + "/health").json()["status"] == "ok"
