"""The bundled food-order example served by `durable serve` to a real restate-server,
watched and driven from the dev tool with ``--restate``: every journal it makes maps to
durable entries (payment call, durable sleep, awakeable resolved by hand, delivery call,
delayed send, state), and its state is read through the cluster."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from durable.devtool.cli import app
from durable.devtool.cluster import journal as rj
from durable.messages import EntryKind as K
from typer.testing import CliRunner

from tests.cluster.conftest import Cluster
from tests.restate_server import AppProcess, RestateServer, clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def food(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    app_dir = tmp_path_factory.mktemp("food-order")
    shutil.copy(ROOT / "devtool" / "example" / "app.py", app_dir / "app.py")
    server = RestateServer(tmp_path_factory.mktemp("restate"))
    cmd = [sys.executable, "-m", "durable.devtool.cli", "serve", "app.py", "--port", "{port}"]
    env = clean_env(PYTHONPATH=str(ROOT / ".pyroot"))
    served = AppProcess(cmd, app_dir, env=env, name="serve")
    try:
        server.start()
        served.start()
        server.register(served.url)
        yield Cluster(server, served)
    finally:
        served.stop()
        server.stop()


def cli(food: Cluster, *args: object) -> str:
    r = runner.invoke(app, [*map(str, args), "--restate", food.admin_url])
    assert r.exit_code == 0, (args, r.stdout, r.stderr)
    return r.stdout


def test_a_food_order_on_restate_seen_and_resolved_from_the_dev_tool(food: Cluster) -> None:
    order = {"id": "o1", "items": ["pizza"], "total_cents": 1250, "delivery_delay": 50}
    order["ride_ms"] = 50
    inv = food.send("OrderWorkflow/o1/process", order)

    def ticket() -> list:
        pending = json.loads(cli(food, "awakeables", "ls", "--json"))["awakeables"]
        return [a for a in pending if a["invocation_id"] == inv]

    deadline = time.monotonic() + 30
    while not ticket() and time.monotonic() < deadline:
        time.sleep(0.2)
    (awk,) = ticket()
    state = json.loads(cli(food, "state", "get", "OrderWorkflow", "o1", "--json"))["state"]
    assert state["status"] == "AT_RESTAURANT" and state["restaurant_ticket"] == awk["id"]
    cli(food, "awakeables", "resolve", awk["id"], '"ready"')
    food.wait_for(inv, lambda r: r.get("status") == "completed")
    shown = json.loads(cli(food, "invocations", "show", inv, "--json"))
    assert shown["status"] == "completed"
    assert shown["output_value"].startswith("order o1 is on its way with ")

    def delivered() -> bool:
        got = json.loads(cli(food, "state", "get", "OrderWorkflow", "o1", "--json"))["state"]
        return got.get("status") == "DELIVERED"

    deadline = time.monotonic() + 30
    while not delivered() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert delivered()

    answer = json.loads(cli(food, "invoke", "OrderWorkflow/status", "--key", "o1"))
    assert answer["status"] == "DELIVERED" and answer["restaurant_ticket"] == awk["id"]

    # every invocation the order made maps to durable entries, none unknown
    kinds: dict[str, list[tuple[K, str | None]]] = {}
    for row in food.query(
        "SELECT id, target_service_name, target_handler_name FROM sys_invocation"
    ):
        target = f"{row['target_service_name']}/{row['target_handler_name']}"
        entries = rj.journal_entries(food.journal(row["id"]), row["id"])
        assert entries[0].kind is K.INPUT and entries[-1].kind is K.OUTPUT, target
        kinds[target] = [(e.kind, e.name) for e in entries]
    process = kinds["OrderWorkflow/process"]
    assert (K.RUN, "token") in process
    assert (K.CALL, "Payment/charge") in process
    assert (K.CALL, "DeliveryManager/start_delivery") in process
    assert (K.RUN, "send to restaurant") in process
    assert {(K.SET_STATE, "status"), (K.SET_STATE, "restaurant_ticket")} <= set(process)
    assert [k for k, _n in process].count(K.SLEEP) >= 1  # the delivery slot's timer
    awakeables = [i for i, (k, _n) in enumerate(process) if k is K.AWAKEABLE]
    assert len(awakeables) == 1
    entries = rj.journal_entries(food.journal(inv), inv)
    assert json.loads(entries[awakeables[0]].payload)["id"] == awk["id"]
    assert json.loads(entries[awakeables[0]].result) == "ready"
    assert (K.RUN, "charge card") in kinds["Payment/charge"]
    start = kinds["DeliveryManager/start_delivery"]
    assert (K.SET_STATE, "driver") in start
    assert (K.ONE_WAY_CALL, "OrderWorkflow/mark_delivered") in start
    assert (K.SET_STATE, "delivered_by") in kinds["OrderWorkflow/mark_delivered"]
    status = kinds["OrderWorkflow/status"]
    assert status[1] == (K.STATE_KEYS, None) and (K.GET_STATE, "driver") in status
