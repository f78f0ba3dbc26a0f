"""kill -9 of `durable serve` mid-invocation, on a real restate-server 1.7: Restate
retries, and once `durable serve` is back on the same port the invocation completes with
every recorded ``ctx.run`` result reused.

Each ``ctx.run`` body appends one line (its name, its process id, a random token) to a
side-effect file and returns it: a body that ran again would add a line, and a result
not reused would not match the file. The handler is killed while it sleeps durably,
after three recorded bodies: each of them ran exactly once, in the first process, and
the body after the sleep ran once, in the second.
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.restate_server import AppProcess, RestateServer, clean_env, restate_fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

APP = """
import os
import time
from datetime import timedelta

from durable import Context, RetryPolicy, Service

# Retries at most 0.5 s apart, so the restarted process is called soon after it is up
# (this policy reaches Restate through durable serve's discovery).
crashy = Service(
    "Crashy",
    retry_policy=RetryPolicy(max_interval=timedelta(milliseconds=500), max_attempts=None),
)


def step(name: str) -> str:
    line = f"{name} {os.getpid()} {os.urandom(4).hex()}"
    with open(os.environ["SIDE_EFFECTS"], "a") as f:
        f.write(line + "\\n")
        f.flush()
        os.fsync(f.fileno())
    return line


def slow(name: str) -> str:
    # records that it started, then waits for the test's go-ahead file
    line = step(name)
    while not os.path.exists(os.environ["GO_AHEAD"]):
        time.sleep(0.02)
    return line


@crashy.handler()
async def in_flight(ctx: Context, n: int) -> list[str]:
    done = [await ctx.run(f"step {i}", step, f"step-{i}") for i in range(n)]
    done.append(await ctx.run("slow", slow, "slow"))  # the kill comes in this body
    return done


@crashy.handler()
async def work(ctx: Context, n: int) -> list[str]:
    done = [await ctx.run(f"step {i}", step, f"step-{i}") for i in range(n)]
    await ctx.sleep(timedelta(seconds=3))  # the kill comes here
    done.append(await ctx.run("last", step, "last"))
    return done
"""


@pytest.fixture(scope="module")
def restate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestateServer]:
    yield from restate_fixture(tmp_path_factory)


def durable_serve(app: Path, port: int, env: dict[str, str]) -> AppProcess:
    """`durable serve APP` on ``port`` (the same port again after a crash)."""
    cmd = [sys.executable, "-m", "durable.devtool.cli", "serve", str(app), "--port", str(port)]
    proc = AppProcess(cmd, app.parent, env=env, name="durable-serve")
    proc.port = port
    return proc


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_kill_9_mid_invocation_then_restart_reuses_every_recorded_run(
    restate: RestateServer, tmp_path: Path
) -> None:
    app = tmp_path / "crashy.py"
    app.write_text(textwrap.dedent(APP))
    effects = tmp_path / "side-effects.txt"
    env = clean_env(SIDE_EFFECTS=str(effects), GO_AHEAD=str(tmp_path / "go"))
    first = durable_serve(app, free_port(), env).start()
    second: AppProcess | None = None
    try:
        restate.register(first.url)
        r = httpx.post(f"{restate.ingress_url}/Crashy/work/send", json=3, timeout=30)
        assert r.status_code == 202, r.text
        inv = r.json()["invocationId"]

        # Three bodies recorded, and the handler asleep: Restate's journal says so.
        deadline = time.monotonic() + 60
        journal: list[str] = []
        while time.monotonic() < deadline:
            journal = [
                row["entry_type"]
                for row in restate.query(
                    f"SELECT entry_type FROM sys_journal WHERE id = '{inv}' ORDER BY index"
                )
            ]
            if "Command: Sleep" in journal:
                break
            time.sleep(0.05)
        assert journal == [
            "Command: Input",
            *["Command: Run", "Notification: Run"] * 3,
            "Command: Sleep",
        ], journal

        first.kill()  # SIGKILL to its process group: nothing runs down cleanly
        assert first.proc is not None and first.proc.returncode == -9
        row = restate.wait_status(inv, "backing-off", timeout=30)
        # Restate saw the attempt break and retries on its own, with backoff
        assert row["retry_count"] >= 1 and row["last_failure"], row

        second = durable_serve(app, first.port, env).start()
        r = httpx.get(f"{restate.ingress_url}/restate/invocation/{inv}/attach", timeout=90)
        assert r.status_code == 200, r.text
        output = r.json()
    finally:
        first.stop()
        if second is not None:
            second.stop()

    ran = lines(effects)
    assert output == ran, "every result the handler saw is the one its body recorded"
    names = [line.split()[0] for line in ran]
    pids = [line.split()[1] for line in ran]
    assert names == ["step-0", "step-1", "step-2", "last"]  # each body exactly once
    assert len(set(pids[:3])) == 1 and pids[3] != pids[0]  # before the kill; after it
    assert restate.wait_status(inv, "completed")["completion_result"] == "success"


def test_kill_9_inside_a_run_body_runs_that_body_again_and_no_other(
    restate: RestateServer, tmp_path: Path
) -> None:
    """A body killed before its result was recorded runs again (at least once); the
    recorded ones before it do not."""
    app = tmp_path / "crashy.py"
    app.write_text(textwrap.dedent(APP))
    effects, go = tmp_path / "side-effects.txt", tmp_path / "go"
    env = clean_env(SIDE_EFFECTS=str(effects), GO_AHEAD=str(go))
    first = durable_serve(app, free_port(), env).start()
    second: AppProcess | None = None
    try:
        restate.register(first.url)
        r = httpx.post(f"{restate.ingress_url}/Crashy/in_flight/send", json=2, timeout=30)
        inv = r.json()["invocationId"]
        deadline = time.monotonic() + 60
        while len(lines(effects)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [line.split()[0] for line in lines(effects)] == ["step-0", "step-1", "slow"]
        first.kill()
        restate.wait_status(inv, "backing-off", timeout=30)
        go.touch()
        second = durable_serve(app, first.port, env).start()
        r = httpx.get(f"{restate.ingress_url}/restate/invocation/{inv}/attach", timeout=90)
        assert r.status_code == 200, r.text
        output = r.json()
    finally:
        first.stop()
        if second is not None:
            second.stop()
    ran = lines(effects)
    assert [line.split()[0] for line in ran] == ["step-0", "step-1", "slow", "slow"]
    assert output == [ran[0], ran[1], ran[3]]  # the second run of the body is recorded
    assert ran[2].split()[1] == ran[0].split()[1] != ran[3].split()[1]  # one per process
