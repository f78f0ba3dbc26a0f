"""Timers, awakeables, calls, delayed sends and cancellation over real HTTP, against real
`durable dev` processes, with kill -9 of runtime and worker in the middle."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from durable.devtool.discovery import bundled_example

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

APP = """
import os, time
from datetime import timedelta
from durable import Service, Context, TerminalError

def record(line):
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(line + "\\n")
        f.flush()
        os.fsync(f.fileno())

sleepers = Service("Sleepers")

@sleepers.handler()
async def nap(ctx: Context, ms: int) -> dict:
    t0 = await ctx.time()
    await ctx.sleep(timedelta(milliseconds=ms))
    woke = await ctx.run("woke", time.time)
    return {"t0": t0, "woke": woke}

@sleepers.handler()
async def spawn(ctx: Context, n_ms: list[int]) -> list[str]:
    return [await ctx.service_send(nap, n_ms[1]).invocation_id() for _ in range(n_ms[0])]

@sleepers.handler()
async def once(ctx: Context, tag: str) -> float:
    now = await ctx.run("record", lambda: record(f"{tag} {time.time()}") or time.time())
    return now

@sleepers.handler()
async def later(ctx: Context, tag: str) -> str:
    handle = ctx.service_send(once, tag, send_delay=timedelta(seconds=5))
    return await handle.invocation_id()

@sleepers.handler()
async def wait(ctx: Context) -> str:
    aw_id, fut = ctx.awakeable(type_hint=str)
    await ctx.run("publish", lambda: record(f"awakeable {aw_id}"))
    return await fut

saga = Service("Saga")

@saga.handler()
async def trip(ctx: Context) -> str:
    done = []
    try:
        for step in ("flight", "hotel", "car"):
            await ctx.run("book " + step, lambda s=step: record("book " + s))
            done.append(step)
            await ctx.sleep(timedelta(seconds=30 if step == "hotel" else 0))
        return "booked"
    except TerminalError:
        for step in reversed(done):
            await ctx.run("undo " + step, lambda s=step: record("undo " + s))
        raise
"""


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_until(fn, timeout: float = 30.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout} s")
        time.sleep(every)


def admin_row(srv, inv: str) -> dict:
    return httpx.get(f"{srv.admin_url}/api/invocations/{inv}", timeout=10).json()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def worker_pid(srv) -> int:
    children: list[int] = []
    for task in Path(f"/proc/{srv.proc.pid}/task").iterdir():
        children += [int(p) for p in (task / "children").read_text().split()]
    [pid] = children
    return pid


def test_food_order_survives_kill_9_in_its_sleep_and_its_awakeable(dev_server, tmp_path):
    """The bundled example end to end: charged once although runtime and worker die twice."""
    ledger = tmp_path / "ledger.txt"
    srv = dev_server(
        bundled_example(), extra=["--no-reload"], env={"DURABLE_EXAMPLE_LEDGER": str(ledger)}
    )
    order = {"id": "o1", "items": ["pizza", "salad"], "total_cents": 2350}
    order |= {"delivery_delay": 4000, "ride_ms": 1000}

    def status(c: httpx.Client) -> dict:
        return c.post("/OrderWorkflow/o1/status").json()

    with srv.client() as c:
        r = c.post("/OrderWorkflow/o1/process/send", json=order)
        assert r.status_code == 202, r.text
        inv = r.json()["invocationId"]
        wait_until(lambda: status(c).get("status") == "PAID")
        t_paid = time.monotonic()
        assert admin_row(srv, inv)["status"] in ("running", "suspended")
    srv.kill()  # kill -9 during the durable sleep
    srv.start()
    with srv.client() as c:  # the timer fires on time (at once if it was due while down)
        state = wait_until(lambda: (s := status(c)).get("restaurant_ticket") and s)
        assert time.monotonic() - t_paid >= 3.5  # the 4 s sleep was not cut short
        assert state["status"] == "AT_RESTAURANT"
        wait_until(lambda: admin_row(srv, inv)["status"] == "suspended")
        assert json.loads(admin_row(srv, inv)["waiting_on"])  # what it is blocked on
    srv.kill()  # kill -9 while it waits on the restaurant's awakeable
    srv.start()
    with srv.client() as c:
        ticket = state["restaurant_ticket"]
        r = c.post(f"/restate/awakeables/{ticket}/resolve", json="ready")
        assert r.status_code == 202, r.text
        out = c.get(f"/restate/invocation/{inv}/attach")
        assert out.status_code == 200 and out.json().startswith("order o1 is on its way with")
        final = wait_until(lambda: (s := status(c))["status"] == "DELIVERED" and s, timeout=20)
        assert final["delivered_by"] == final["driver"]
        assert c.post(f"/restate/awakeables/{ticket}/resolve", json="again").status_code == 409
    charges = [line for line in lines(ledger) if line.startswith("charge o1 ")]
    assert len(charges) == 1, lines(ledger)
    assert "[restaurant] order o1" in srv.log()


def test_a_thousand_sleepers_survive_a_restart_and_none_wakes_early(
    write_app, dev_server, tmp_path, capsys
):
    """1000 invocations sleep 2 s (suspended at once); the runtime is killed while
    hundreds of them sleep and restarted: all complete, none early, and the worker's
    memory stays flat while they sleep (suspended handlers are not held)."""
    srv = dev_server(
        write_app(APP),
        extra=["--no-reload", "--suspend-after", "0"],
        env={"RECORD_FILE": str(tmp_path / "rec.txt")},
    )
    n, sleep_ms = 1000, 2000
    with srv.client() as c:  # warm up: the first call loads what a handler needs
        assert c.post("/Sleepers/nap", json=1).status_code == 200
    worker = worker_pid(srv)
    idle = rss_kib(worker)
    # a first wave of 1000 that do not sleep: the worker's allocator grows to what a burst
    # of 1000 handlers needs, so what follows measures only what sleeping ones would hold
    with srv.client() as c:
        for inv in c.post("/Sleepers/spawn", json=[n, 1]).json():
            assert c.get(f"/restate/invocation/{inv}/attach").status_code == 200
    warm = rss_kib(worker)
    samples: list[tuple[int, int]] = []  # (worker RSS KiB, suspended)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                counts = httpx.get(f"{srv.admin_url}/api/health", timeout=10).json()["counts"]
            except httpx.HTTPError:
                break
            samples.append((rss_kib(worker), counts.get("suspended", 0)))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    with srv.client() as c:  # one handler sends the 1000 (an HTTP client is too slow here)
        ids = c.post("/Sleepers/spawn", json=[n, sleep_ms]).json()
    sent_in = time.monotonic() - t0
    wait_until(lambda: samples and samples[-1][1] >= n * 0.9, timeout=20, every=0.05)
    stop.set()
    sampler.join()
    sleeping_at_kill = samples[-1][1]
    srv.kill()  # kill -9 of the runtime and its worker while hundreds of them sleep
    srv.start()

    async def attach_all() -> list[dict]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=srv.url, limits=limits, timeout=60) as c:
            sem = asyncio.Semaphore(100)

            async def one(inv: str) -> dict:
                async with sem:
                    r = await c.get(f"/restate/invocation/{inv}/attach")
                    assert r.status_code == 200, r.text
                    return r.json()

            return await asyncio.gather(*(one(i) for i in ids))

    results = asyncio.run(attach_all())
    total = time.monotonic() - t0
    early = [r for r in results if r["woke"] - r["t0"] < sleep_ms / 1000]
    assert len(results) == n and not early, early[:3]
    peak_sleeping = max(s for _, s in samples)
    asleep = [r for r, s in samples if s >= n * 0.9]
    with capsys.disabled():
        print(
            f"\n[1000 sleepers] created in {sent_in:.1f} s, all done {total:.1f} s after the "
            f"first send; up to {peak_sleeping} suspended at once, {sleeping_at_kill} at the "
            f"kill -9. Worker RSS: idle {idle / 1024:.1f} MiB, after a first burst of 1000 "
            f"{warm / 1024:.1f} MiB, while 1000 sleep {min(asleep) / 1024:.1f}-"
            f"{max(asleep) / 1024:.1f} MiB (+{(max(asleep) - warm) / 1024:.1f} MiB)"
        )
    assert sleeping_at_kill >= n * 0.9
    # 1000 live handlers cost ~25 MiB (idle -> first burst); suspended ones must hold none:
    # allow allocator noise, not per-invocation memory
    assert max(asleep) - warm < 8 * 1024


def test_delayed_send_survives_a_restart_and_runs_once(write_app, dev_server, tmp_path):
    rec = tmp_path / "rec.txt"
    srv = dev_server(write_app(APP), extra=["--no-reload"], env={"RECORD_FILE": str(rec)})
    with srv.client() as c:
        t_send = time.time()
        r = c.post("/Sleepers/once/send?delay=5s", json="ingress")
        assert r.status_code == 202
        from_ingress = r.json()["invocationId"]
        from_handler = c.post("/Sleepers/later", json="handler").json()
        for inv in (from_ingress, from_handler):
            assert admin_row(srv, inv)["status"] == "scheduled"
    time.sleep(1)
    srv.kill()
    srv.start()
    for inv in (from_ingress, from_handler):
        assert admin_row(srv, inv)["status"] == "scheduled"  # from the store, after restart
    with srv.client() as c:
        for inv in (from_ingress, from_handler):
            r = c.get(f"/restate/invocation/{inv}/attach")
            assert r.status_code == 200, r.text
            assert r.json() >= t_send + 5 - 0.05  # not early
    time.sleep(0.5)
    ran = lines(rec)
    assert sorted(line.split()[0] for line in ran) == ["handler", "ingress"], ran


def test_bad_awakeable_requests_are_clear_4xx_and_leave_the_invocation_unharmed(
    write_app, dev_server, tmp_path
):
    rec = tmp_path / "rec.txt"
    srv = dev_server(write_app(APP), extra=["--no-reload"], env={"RECORD_FILE": str(rec)})
    with srv.client() as c:
        inv = c.post("/Sleepers/wait/send").json()["invocationId"]
        aw_id = wait_until(lambda: [ln.split()[1] for ln in lines(rec) if ln.startswith("aw")])[0]
        unknown = "awk_" + "A" * 24
        cases = [
            (c.post("/restate/awakeables/not-an-id/resolve", json=1), 400, "malformed"),
            (c.post("/restate/awakeables/awk_%3Cscript%3E/resolve", json=1), 400, "malformed"),
            (c.post(f"/restate/awakeables/{unknown}/resolve", json=1), 404, "unknown awakeable"),
            (c.post(f"/restate/awakeables/{unknown}/reject", content=b"no"), 404, "unknown"),
            (c.post(f"/restate/awakeables/{aw_id}/resolve", content=b"{bad"), 400, "JSON"),
            (c.post(f"/restate/awakeables/{aw_id}/reject", json={"a": 1}), 400, "not a JSON"),
            (c.post(f"/restate/awakeables/{aw_id}/reject", json=42), 400, "not a JSON"),
            (c.get(f"/restate/awakeables/{aw_id}/resolve"), 405, "POST"),
        ]
        for r, status, text in cases:
            assert r.status_code == status, (r.request.url, r.text)
            assert r.json()["code"] == status and text in r.json()["message"], r.json()
        assert c.get(f"/restate/invocation/{inv}/output").status_code == 470  # still waiting
        # clients that attach and give up leave nothing waiting behind them
        for _ in range(10):
            with pytest.raises(httpx.ReadTimeout):
                c.get(f"/restate/invocation/{inv}/attach", timeout=0.2)

        def waiting() -> int:
            return httpx.get(f"{srv.admin_url}/api/health", timeout=10).json()["waiting_clients"]

        wait_until(lambda: waiting() == 0 or None, timeout=10)
        assert c.post(f"/restate/awakeables/{aw_id}/resolve", json="done").status_code == 202
        r = c.post(f"/restate/awakeables/{aw_id}/resolve", json="again")
        assert r.status_code == 409 and "already completed" in r.json()["message"]
        assert c.get(f"/restate/invocation/{inv}/attach").json() == "done"
        # a rejection reaches the handler as a TerminalError with the message
        inv2 = c.post("/Sleepers/wait/send").json()["invocationId"]
        aw2 = wait_until(lambda: [ln.split()[1] for ln in lines(rec) if ln.startswith("aw")][1:])
        r = c.post(f"/restate/awakeables/{aw2[0]}/reject", content=b"out of stock")
        assert r.status_code == 202
        out = c.get(f"/restate/invocation/{inv2}/attach")
        assert out.status_code == 500 and out.json()["message"] == "out of stock"
        # a blocking call whose client gives up leaves nothing waiting either
        for _ in range(3):
            with pytest.raises(httpx.ReadTimeout):
                c.post("/Sleepers/wait", timeout=0.3)
        wait_until(lambda: waiting() == 0 or None, timeout=10)


def test_admin_cancel_compensates_in_reverse_and_kill_does_not(write_app, dev_server, tmp_path):
    rec = tmp_path / "rec.txt"
    srv = dev_server(write_app(APP), extra=["--no-reload"], env={"RECORD_FILE": str(rec)})
    with srv.client() as c:
        inv = c.post("/Saga/trip/send").json()["invocationId"]
        wait_until(lambda: lines(rec) == ["book flight", "book hotel"])
        r = httpx.post(f"{srv.admin_url}/api/invocations/{inv}/cancel", timeout=10)
        assert r.status_code == 200, r.text
        out = c.get(f"/restate/invocation/{inv}/attach")
        assert out.status_code == 409 and out.json()["message"] == "cancelled"
        assert lines(rec) == ["book flight", "book hotel", "undo hotel", "undo flight"]
        assert admin_row(srv, inv)["status"] == "cancelled"

        rec.unlink()
        inv = c.post("/Saga/trip/send").json()["invocationId"]
        wait_until(lambda: lines(rec) == ["book flight", "book hotel"])
        r = httpx.post(f"{srv.admin_url}/api/invocations/{inv}/kill", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "killed"
        out = c.get(f"/restate/invocation/{inv}/attach")
        assert out.status_code == 409 and out.json()["message"] == "killed"
        time.sleep(0.5)
        assert lines(rec) == ["book flight", "book hotel"]
        # acting on a finished invocation is a clear conflict, a cross-site form is refused
        r = httpx.post(f"{srv.admin_url}/api/invocations/{inv}/cancel", timeout=10)
        assert r.status_code == 409
        r = httpx.post(
            f"{srv.admin_url}/api/invocations/{inv}/kill",
            headers={"Origin": "http://evil.example"},
            timeout=10,
        )
        assert r.status_code == 403
