"""A food order run on a real restate-server (the bundled example served by `durable
serve`), pulled into a `durable dev` of the same example and replayed there. Restate
journals neither the awakeable's creation nor the ``with_timeout`` combinator, so the
pull guesses the awakeable's place (one entry late here) and has no combinator entry:
the replay settles both and matches; an edit diverges at its stored entry, with file
and line; ``restart --from N`` keeps the settled prefix, or refuses N inside the
awakeable's window."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from durable.devtool.cli import app
from durable.devtool.cluster import journal as rj
from durable.messages import EntryKind as K
from typer.testing import CliRunner

from tests.cluster.conftest import Cluster
from tests.conftest import DevServer
from tests.restate_server import AppProcess, RestateServer, clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

HERE = Path(__file__).parent

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "devtool" / "example" / "app.py"
runner = CliRunner()


def durable(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def resolve(food: Cluster, awk: str, value: str) -> None:
    r = durable("awakeables", "resolve", awk, json.dumps(value), "--restate", food.admin_url)
    assert r.exit_code == 0, r.output  # through Restate's ingress


@pytest.fixture(scope="module")
def order(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str]]:
    """The cluster, and the id of an ``OrderWorkflow/process`` run there to the end."""
    app_dir = tmp_path_factory.mktemp("food-order")
    shutil.copy(EXAMPLE, app_dir / "app.py")
    server = RestateServer(tmp_path_factory.mktemp("restate"))
    cmd = [sys.executable, "-m", "durable.devtool.cli", "serve", "app.py", "--port", "{port}"]
    served = AppProcess(cmd, app_dir, env=clean_env(PYTHONPATH=str(ROOT / ".pyroot")))
    race_dir = tmp_path_factory.mktemp("race")
    shutil.copy(HERE / "select_app.py", race_dir / "app.py")
    raced = AppProcess(cmd, race_dir, env=clean_env(PYTHONPATH=str(ROOT / ".pyroot")))
    try:
        server.start()
        served.start()
        server.register(served.url)
        raced.start()
        server.register(raced.url)
        food = Cluster(server, served)
        body = {"id": "o7", "items": ["soup"], "total_cents": 900, "delivery_delay": 50}
        inv = food.send("OrderWorkflow/o7/process", {**body, "ride_ms": 50})
        deadline = time.monotonic() + 60
        pending: list[dict[str, Any]] = []
        while not pending and time.monotonic() < deadline:
            r = durable("awakeables", "ls", "--json", "--restate", food.admin_url)
            pending = [a for a in json.loads(r.stdout)["awakeables"] if a["invocation_id"] == inv]
            time.sleep(0.2)
        assert pending, "the order never waited on the restaurant"
        r = durable(
            "awakeables", "resolve", pending[0]["id"], '"ready"', "--restate", food.admin_url
        )
        assert r.exit_code == 0, r.output  # through Restate's ingress
        food.wait_for(inv, lambda row: row.get("status") == "completed", timeout=60)
        yield food, inv
    finally:
        raced.stop()
        served.stop()
        server.stop()


def wait_done(dev: DevServer, inv_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{dev.admin_url}/api/invocations/{inv_id}", timeout=10).json()
        if body.get("status") in ("completed", "failed", "killed", "cancelled"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"{inv_id} did not finish: {body.get('status')}\n{dev.log()[-3000:]}")


def replay(inv: str, dev: DevServer, until: str | None = None) -> dict[str, Any]:
    """``invocations replay --json``; with ``until``, again until that outcome (the
    worker reloads an edited app.py)."""
    deadline = time.monotonic() + 60
    while True:
        r = durable("invocations", "replay", inv, "--url", dev.admin_url, "--json")
        result = json.loads(r.stdout)
        if until is None or result["outcome"] == until or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def test_a_pulled_food_order_replays_and_an_edit_diverges_at_its_entry(
    order: tuple[Cluster, str], tmp_path: Path
) -> None:
    food, remote = order
    project = tmp_path / "project"
    project.mkdir()
    source = EXAMPLE.read_text()
    (project / "app.py").write_text(source)
    store = project / ".durable" / "durable.duckdb"
    dev = DevServer(project / "app.py", store, project)
    dev.start(timeout=60)
    try:
        r = durable("pull", remote, "--restate", food.admin_url, "--store", store, "--json")
        assert r.exit_code == 0, r.output
        inv = json.loads(r.stdout)["id"]
        shown = httpx.get(f"{dev.admin_url}/api/invocations/{inv}", timeout=10).json()
        kinds = [(e["kind"], e["name"]) for e in shown["journal"]]
        awk = kinds.index(("awakeable", None))
        # the pull's guess: just before the command handing the id on
        assert (
            kinds[awk - 1] == ("set_state", "status")
            and shown["journal"][awk]["payload"]["guessed"]
        ), kinds
        assert kinds[awk + 1] == ("set_state", "restaurant_ticket"), kinds
        assert ("combinator", "with_timeout") not in kinds  # Restate journals none

        result = replay(inv, dev)
        assert result["outcome"] == "match", result
        assert result["stopped"] == "the handler returned", result
        r = durable("invocations", "replay", inv, "--url", dev.admin_url)
        assert r.exit_code == 0 and ": matches (entries 1-" in r.stdout, r.output

        # restart from inside the awakeable's window: refused, saying where to restart
        r = durable("invocations", "restart", inv, "--from", awk, "--url", dev.admin_url)
        assert r.exit_code == 1, r.output
        assert f"restart from entry {awk - 1} or earlier, or from entry {awk + 1} or later" in (
            r.output
        )
        # restart past it (from the timeout's timer, never completed): the prefix keeps
        # the awakeable where the code makes it
        timer = kinds.index(("sleep", None), awk + 1)
        r = durable("invocations", "restart", inv, "--from", timer, "--url", dev.admin_url)
        assert r.exit_code == 0, r.output
        assert "as a replay settled it" in r.stdout, r.stdout
        new = r.stdout.split(" as ", 1)[1].split()[0]
        done = wait_done(dev, new)
        assert done["status"] == "completed", done
        assert done["output_value"].startswith("order o7 is on its way with "), done
        again = [(e["kind"], e["name"]) for e in done["journal"]]
        assert again.index(("awakeable", None)) == awk - 1  # where the code makes it
        assert ("combinator", "with_timeout") in again

        # an edit renaming a ctx.run after the awakeable: diverges at its stored entry
        edited = source.replace('ctx.run("send to restaurant"', 'ctx.run("call the restaurant"')
        assert edited != source
        (project / "app.py").write_text(edited)
        line = next(i for i, t in enumerate(edited.splitlines(), 1) if "call the restaurant" in t)
        result = replay(inv, dev, until="divergence")
        assert result["outcome"] == "divergence", result
        assert result["index"] == kinds.index(("run", "send to restaurant")), (result, kinds)
        assert result["recorded"] == "run('send to restaurant')", result
        assert result["requested"] == "run('call the restaurant')", result
        assert result["location"].endswith(f"app.py:{line}"), result
    finally:
        dev.stop()


def test_a_pulled_select_and_as_completed_replay_in_restates_completion_order(
    order: tuple[Cluster, str], tmp_path: Path
) -> None:
    food, _ = order
    remote = food.send("Race/pick", "go")
    ids: list[str] = []
    deadline = time.monotonic() + 60
    while not ids and time.monotonic() < deadline:
        for e in rj.journal_entries(food.journal(remote), remote):
            if (e.kind, e.name, e.completed) == (K.RUN, "publish", True):
                ids = json.loads(e.result or "[]")
        time.sleep(0.2)
    assert len(ids) == 2, food.journal(remote)
    resolve(food, ids[1], "B")  # b first: select picks b
    time.sleep(0.5)
    resolve(food, ids[0], "A")
    food.wait_for(remote, lambda row: row.get("status") == "completed", timeout=60)

    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text((HERE / "select_app.py").read_text())
    store = project / ".durable" / "durable.duckdb"
    dev = DevServer(project / "app.py", store, project)
    dev.start(timeout=60)
    try:
        r = durable("pull", remote, "--restate", food.admin_url, "--store", store, "--json")
        assert r.exit_code == 0, r.output
        inv = json.loads(r.stdout)["id"]
        shown = httpx.get(f"{dev.admin_url}/api/invocations/{inv}", timeout=10).json()
        assert shown["output_value"] == "b:B:B,A", shown
        result = replay(inv, dev)
        assert result["outcome"] == "match", result
        assert result["stopped"] == "the handler returned", result  # the same output
    finally:
        dev.stop()
