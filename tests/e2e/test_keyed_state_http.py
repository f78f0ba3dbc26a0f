"""Virtual objects and workflows over real HTTP against a real `durable dev` process.

Counter exactness under concurrency and across kill -9, shared reads that never wait
for the key, queue positions, workflow run-once and promises, URL-encoded keys, and
the errors a caller gets for bad input.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from urllib.parse import quote

import duckdb
import httpx
import pytest
from durable.devtool.store import connect_config, queries

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

APP = """
import os, time
from durable import (Context, ObjectContext, ObjectSharedContext, Service, TerminalError,
                     VirtualObject, Workflow, WorkflowContext, WorkflowSharedContext)

counter = VirtualObject("Counter")

@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    v = (await ctx.get("count", type_hint=int) or 0) + n
    ctx.set("count", v)
    return v

def _wait_for_file(path: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)

@counter.handler()
async def hold(ctx: ObjectContext, release_file: str) -> int:
    # holds the key in a slow ctx.run until the test creates release_file
    await ctx.run("slow", _wait_for_file, release_file)
    return await ctx.get("count", type_hint=int) or 0

@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count", type_hint=int) or 0

@counter.handler(kind="shared")
async def bad_write(ctx: ObjectSharedContext) -> None:
    ctx.set("count", -1)

@counter.handler(kind="shared")
async def whoami(ctx: ObjectSharedContext) -> str:
    return ctx.key()

greeter = Service("Greeter")

@greeter.handler()
async def hi(ctx: Context, name: str) -> str:
    return f"hi {name}"

signup = Workflow("Signup")

def _count_run(wf_id: str) -> None:
    with open(os.environ["RUNS_FILE"], "a") as f:
        f.write(wf_id + "\\n")

@signup.main()
async def run(ctx: WorkflowContext, email: str) -> str:
    await ctx.run("count", _count_run, ctx.key())
    ctx.set("status", "started")
    await ctx.promise("go").value()
    ctx.set("status", "waiting-code")
    try:
        code = await ctx.promise("code", type_hint=str).value()
    except TerminalError as e:
        ctx.set("status", "rejected")
        return f"rejected: {e.message} ({e.status_code})"
    ctx.set("status", "done")
    return f"{email} confirmed with {code}"

@signup.handler()
async def go(ctx: WorkflowSharedContext) -> None:
    await ctx.promise("go").resolve(True)

@signup.handler()
async def confirm(ctx: WorkflowSharedContext, code: str) -> None:
    await ctx.promise("code").resolve(code)

@signup.handler()
async def deny(ctx: WorkflowSharedContext, why: str) -> None:
    await ctx.promise("code").reject(why, 403)

@signup.handler()
async def status(ctx: WorkflowSharedContext) -> dict:
    return {"status": await ctx.get("status"), "code": await ctx.promise("code").peek()}

@signup.handler()
async def stage(ctx: WorkflowSharedContext) -> str:
    return await ctx.get("status")
"""

KEYS = 100
CALLS = 2000
CONCURRENCY = 32


def _key(i: int) -> str:
    return f"k{i % KEYS:03d}"


def _client(srv, conns: int = CONCURRENCY + 8) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    return httpx.AsyncClient(base_url=srv.url, limits=limits, timeout=60)


def _open_store(srv) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(srv.store, read_only=True, config=connect_config)


async def _admin(srv, inv: str) -> dict:
    async with httpx.AsyncClient(timeout=10) as c:
        return (await c.get(f"{srv.admin_url}/api/invocations/{inv}")).json()


async def _until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def app(write_app, tmp_path):
    return write_app(APP), {"RUNS_FILE": str(tmp_path / "runs.txt")}


async def test_counter_is_exact_under_concurrency_and_shared_reads_never_wait(
    app, dev_server, tmp_path
):
    path, env = app
    srv = dev_server(path, env=env)
    seen: list[tuple[int, str, int]] = []  # shared reads: (reader, key, value)
    release = tmp_path / "release"
    async with _client(srv) as c:
        # k000 is held by an exclusive handler blocked in a slow ctx.run
        assert (await c.post("/Counter/k000/add", json=5)).json() == 5
        r = await c.post("/Counter/k000/hold/send", json=str(release))
        hold = r.json()["invocationId"]
        await _until(lambda: _running(srv, hold), what="hold to run")
        # exclusive calls of k000 queue behind it, in arrival order, with their position
        queued = []
        for n in (1, 2, 3):
            r = await c.post("/Counter/k000/add/send", json=-n)
            queued.append(r.json()["invocationId"])
        for pos, inv in enumerate(queued, start=1):
            body = await _admin(srv, inv)
            assert body["status"] == "pending" and body["queue_position"] == pos, body
        assert (await _admin(srv, hold))["queue_position"] is None
        # shared reads of k000 answer while the key is held, with the committed value
        for _ in range(3):
            r = await c.post("/Counter/k000/get")
            assert r.status_code == 200 and r.json() == 5
        assert (await _admin(srv, hold))["status"] == "running", "a read waited for the key"
        release.touch()
        assert (await c.get(f"/restate/invocation/{hold}/attach")).json() == 5
        outs = [(await c.get(f"/restate/invocation/{i}/attach")).json() for i in queued]
        assert outs == [4, 2, -1]
        assert (await c.post("/Counter/k000/add", json=1)).json() == 0

        # 2000 adds over 100 keys at concurrency 32, with shared reads alongside
        results: dict[str, list[int]] = collections.defaultdict(list)
        todo = list(range(CALLS))
        random.Random(7).shuffle(todo)
        done = asyncio.Event()

        async def adder() -> None:
            while todo:
                k = _key(todo.pop())
                r = await c.post(f"/Counter/{k}/add", json=1)
                assert r.status_code == 200, r.text
                results[k].append(r.json())

        async def reader(n: int) -> None:
            rng = random.Random(n)
            while not done.is_set():
                k = _key(rng.randrange(KEYS))
                r = await c.post(f"/Counter/{k}/get")
                assert r.status_code == 200, r.text
                seen.append((n, k, r.json()))

        t_run = time.perf_counter()
        readers = [asyncio.create_task(reader(n)) for n in range(4)]
        await asyncio.gather(*(adder() for _ in range(CONCURRENCY)))
        wall = time.perf_counter() - t_run
        done.set()
        await asyncio.gather(*readers)
        for i in range(KEYS):
            k = _key(i)
            assert (await c.post(f"/Counter/{k}/get")).json() == CALLS // KEYS, k
            # every add saw a different count: none lost, none applied twice
            assert sorted(results[k]) == list(range(1, CALLS // KEYS + 1)), k
    print(f"\n{CALLS} adds in {wall:.1f}s ({CALLS / wall:.0f}/s), {len(seen)} shared reads")
    assert len(seen) > 20
    # one reader's reads of one key only go forward
    last: dict[tuple[int, str], int] = {}
    for n, k, v in seen:
        assert v >= last.get((n, k), 0), (n, k, v)
        last[(n, k)] = v
    # and every value read was committed: a set in the state history
    srv.stop()
    con = _open_store(srv)
    try:
        for _n, k, v in seen:
            if v == 0:
                continue
            hist = queries.state_history(con, "Counter", k)
            assert any(h.op == "set" and h.value == str(v) for h in hist), (k, v)
    finally:
        con.close()


async def _running(srv, inv: str) -> bool:
    return (await _admin(srv, inv))["status"] == "running"


async def test_kill_9_mid_run_then_resend_with_idempotency_keys_counts_stay_exact(app, dev_server):
    path, env = app
    srv = dev_server(path, env=env)
    answered: dict[int, int] = {}
    order = list(range(CALLS))
    random.Random(11).shuffle(order)

    async def send_all(todo: list[int], stop_after: int | None) -> None:
        todo = list(todo)
        async with _client(srv) as c:

            async def one() -> None:
                while todo:
                    i = todo.pop()
                    try:
                        r = await c.post(
                            f"/Counter/{_key(i)}/add",
                            json=1,
                            headers={"Idempotency-Key": f"add-{i}"},
                        )
                    except httpx.HTTPError:
                        continue  # the runtime died under this request
                    if r.status_code == 200:
                        answered[i] = r.json()

            async def killer() -> None:
                await _until(lambda: _ready(len(answered) >= stop_after), timeout=60)
                await asyncio.to_thread(srv.kill)

            tasks = [one() for _ in range(CONCURRENCY)]
            if stop_after is not None:
                tasks.append(killer())
            await asyncio.gather(*tasks)

    await send_all(order, stop_after=CALLS // 3)
    first = len(answered)
    assert CALLS // 3 <= first < CALLS, "the kill should land mid-run"
    await asyncio.to_thread(srv.start)
    missing = [i for i in order if i not in answered]
    await send_all(missing, stop_after=None)
    assert len(answered) == CALLS
    by_key: dict[str, list[int]] = collections.defaultdict(list)
    for i, v in answered.items():
        by_key[_key(i)].append(v)
    async with _client(srv) as c:
        for i in range(KEYS):
            k = _key(i)
            assert (await c.post(f"/Counter/{k}/get")).json() == CALLS // KEYS, k
            # a re-sent call that had committed gets its first result back
            assert sorted(by_key[k]) == list(range(1, CALLS // KEYS + 1)), k
    print(f"\nkill -9 after {first} answered adds; re-sent {len(missing)}")
    srv.stop()
    # every state change is in the store together with the journal entry that made it
    con = _open_store(srv)
    try:
        journal = set(
            con.execute(
                "SELECT invocation_id, idx FROM journal WHERE kind = 'set_state'"
            ).fetchall()
        )
        hist = con.execute("SELECT invocation_id, entry_index FROM state_history").fetchall()
        assert len(hist) == len(set(hist)) == len(journal) == CALLS
        assert set(hist) == journal
    finally:
        con.close()


async def _ready(value: bool) -> bool:
    return value


async def test_workflow_runs_once_and_promises_resolve_before_and_after_main_waits(
    app, dev_server, tmp_path
):
    path, env = app
    srv = dev_server(path, env=env)
    async with _client(srv) as c:
        r = await c.post("/Signup/w1/run/send", json="a@x")
        assert r.status_code == 202, r.text
        inv = r.json()["invocationId"]
        r = await c.post("/Signup/w1/run/send", json="b@x")  # as Restate: the same id
        assert r.status_code == 202, r.text
        assert r.json() == {"invocationId": inv, "status": "PreviouslyAccepted"}
        r = await c.get("/restate/workflow/Signup/w1/output")
        assert r.status_code == 470, r.text

        async def status(wf: str) -> dict:
            return (await c.post(f"/Signup/{wf}/status")).json()

        await _until(
            lambda: _eq(status("w1"), {"status": "started", "code": None}), what="w1 started"
        )
        # resolved before main waits on it
        assert (await c.post("/Signup/w1/confirm", json="123")).status_code == 200
        assert await status("w1") == {"status": "started", "code": "123"}
        assert (await c.post("/Signup/w1/go")).status_code == 200
        r = await c.get("/restate/workflow/Signup/w1/attach")
        assert r.status_code == 200 and r.json() == "a@x confirmed with 123"
        # a second run with the same id is refused (as Restate), naming the first
        r = await c.post("/Signup/w1/run", json="c@x")
        assert r.status_code == 409, r.text
        assert r.json()["message"] == "the workflow method was already invoked"
        assert r.headers["x-restate-id"] == inv
        r = await c.get(f"/restate/invocation/{inv}/output")
        assert r.json() == "a@x confirmed with 123"
        assert (await c.get("/restate/workflow/Signup/w1/output")).json() == r.json()
        # a promise completes once
        r = await c.post("/Signup/w1/confirm", json="456")
        assert r.status_code == 409 and "already completed" in r.json()["message"]

        # resolved after main waits on it
        assert (await c.post("/Signup/w2/run/send", json="d@x")).status_code == 202
        await _until(lambda: _eq(status("w2"), {"status": "started", "code": None}))
        assert (await c.post("/Signup/w2/go")).status_code == 200
        await _until(lambda: _eq(status("w2"), {"status": "waiting-code", "code": None}))
        assert (await c.post("/Signup/w2/confirm", json="777")).status_code == 200
        r = await c.get("/restate/workflow/Signup/w2/attach")
        assert r.json() == "d@x confirmed with 777"

        # a rejected promise surfaces as a TerminalError in main
        assert (await c.post("/Signup/w3/run/send", json="e@x")).status_code == 202
        await _until(lambda: _eq(status("w3"), {"status": "started", "code": None}))
        await c.post("/Signup/w3/go")
        assert (await c.post("/Signup/w3/deny", json="unknown user")).status_code == 200
        r = await c.get("/restate/workflow/Signup/w3/attach")
        assert r.json() == "rejected: unknown user (403)"

        # completed workflows stay inspectable: state, promises and output
        assert await status("w1") == {"status": "done", "code": "123"}
        assert (await c.post("/Signup/w3/stage")).json() == "rejected"
        r = await c.post("/Signup/w3/status")  # peek of a rejected promise raises its error
        assert r.status_code == 403 and r.json()["message"] == "unknown user", r.text

        # an id that never ran: its shared handlers run (as Restate), there is no run
        r = await c.post("/Signup/nobody/status")
        assert r.status_code == 200 and r.json() == {"status": None, "code": None}, r.text
        r = await c.get("/restate/workflow/Signup/nobody/attach")
        assert r.status_code == 404, r.text
    runs = (tmp_path / "runs.txt").read_text().split()
    assert sorted(runs) == ["w1", "w2", "w3"]


async def _eq(coro, expected) -> bool:
    return (await coro) == expected


KEYS_TO_ENCODE = [
    "a/b",
    "a/b/",
    "with space",
    "ünïcödé ✓ 🎉",
    "100%",
    "a?b#c&d=e",
    "..",
    "+plus+",
    "",
]


def _enc(key: str) -> str:
    return quote(key, safe="").replace(".", "%2E")


async def test_keys_are_arbitrary_url_encoded_strings(app, dev_server):
    path, env = app
    srv = dev_server(path, env=env)
    async with _client(srv) as c:
        for n, key in enumerate(KEYS_TO_ENCODE, start=1):
            for _ in range(n):
                r = await c.post(f"/Counter/{_enc(key)}/add", json=1)
                assert r.status_code == 200, (key, r.text)
            r = await c.post(f"/Counter/{_enc(key)}/add/send", json=0)
            assert r.status_code == 202, (key, r.text)
            inv = r.json()["invocationId"]
            assert (await c.get(f"/restate/invocation/{inv}/attach")).json() == n
        for n, key in enumerate(KEYS_TO_ENCODE, start=1):
            assert (await c.post(f"/Counter/{_enc(key)}/whoami")).json() == key
            assert (await c.post(f"/Counter/{_enc(key)}/get")).json() == n, key
        # the admin API shows a key's state, its history, and the state as of an entry
        key = "ünïcödé ✓ 🎉"
        r = await c.post(f"/Counter/{_enc(key)}/add/send", json=10)
        inv = r.json()["invocationId"]
        assert (await c.get(f"/restate/invocation/{inv}/attach")).json() == 14
        async with httpx.AsyncClient(base_url=srv.admin_url, timeout=10) as adm:
            target = {"service": "Counter", "key": key}
            r = await adm.get("/api/state", params=target)
            assert r.json()["state"] == {"count": 14}, r.text
            r = await adm.get("/api/state-history", params=target)
            changes = r.json()["changes"]
            assert [ch["value"] for ch in changes] == [1, 2, 3, 4, 4, 14]
            assert changes[-1]["invocation_id"] == inv and changes[-1]["op"] == "set"
            for entry, count in [(1, 4), (2, 14)]:  # get_state, then set_state
                r = await adm.get(
                    "/api/state", params={**target, "invocation": inv, "entry": entry}
                )
                assert r.json()["state"] == {"count": count}, r.text
            r = await adm.get("/api/state", params={"service": "Counter"})
            assert r.status_code == 400
        # "a" and "b" are not "a/b"
        assert (await c.post("/Counter/a/get")).json() == 0
        # workflow ids too
        wf = "order 7/ü"
        assert (await c.post(f"/Signup/{_enc(wf)}/run/send", json="x")).status_code == 202
        r = await c.get(f"/restate/workflow/Signup/{_enc(wf)}/output")
        assert r.status_code == 470, r.text
        for bad, status, text in [
            ("/Counter/%FF/add", 400, "does not decode to UTF-8"),
            ("/Counter/%G1/add", 400, "malformed percent-encoding"),
            ("/Counter/a%/add", 400, "malformed percent-encoding"),
            ("/Counter/a/b/add", 404, "%2F"),
        ]:
            r = await c.post(bad, json=1)
            assert r.status_code == status and text in r.json()["message"], (bad, r.text)


async def test_bad_input_gets_clear_errors_and_loses_nothing(app, dev_server):
    path, env = app
    srv = dev_server(path, env=env)
    async with _client(srv) as c:
        assert (await c.post("/Counter/k/add", json=1)).json() == 1
        cases = [
            ("/Counter/k/bad_write", 400, "Counter/bad_write takes no input: send an empty"),
            ("/Counter/add", 400, "call it with a key, as /Counter/{key}/add"),
            ("/Counter/add/send", 400, "call it with a key"),
            ("/Greeter/k/hi", 400, "Greeter is a service, it takes no key: call /Greeter/hi"),
            ("/Signup/never/status", 400, "Signup/status takes no input"),
            ("/Signup/run", 400, "call it with a key"),
            ("/Counter/k/nope", 404, "has no handler 'nope'"),
        ]
        for url, status, text in cases:
            r = await c.post(url, json=1)
            assert r.status_code == status, (url, r.text)
            assert text in r.json()["message"], (url, r.text)
        assert "exclusive" in (await c.post("/Counter/k/bad_write")).json()["message"]
        # the key is not blocked and nothing was changed or lost
        assert (await c.post("/Counter/k/get")).json() == 1
        assert (await c.post("/Counter/k/add", json=1)).json() == 2
        assert (await c.post("/Greeter/hi", json="x")).json() == "hi x"
