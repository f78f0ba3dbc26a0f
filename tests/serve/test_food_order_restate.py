"""The bundled example's food order end to end on a real restate-server 1.7, served by
`durable serve` and registered with `durable deploy`: payment (a call whose body is a
``ctx.run``), a durable sleep, the restaurant's awakeable resolved (or rejected) over
Restate's ingress, the delivery call and its delayed send; then the objects' state read
back through Restate's own SQL (``state``) and the order's journal (``sys_journal``).
A rejected or cancelled order is refunded, as under durable dev.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from durable.devtool.cli import app as cli
from durable.devtool.discovery import bundled_example
from typer.testing import CliRunner

from tests.restate_server import AppProcess, RestateServer, clean_env, restate_fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

DRIVERS = {"Ada", "Grace", "Linus", "Margaret"}


@pytest.fixture(scope="module")
def restate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestateServer]:
    yield from restate_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def ledger(restate: RestateServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`durable serve` on the bundled example, registered with `durable deploy`; the
    payment provider's ledger file."""
    work = tmp_path_factory.mktemp("food-order")
    ledger = work / "ledger.txt"
    cmd = [sys.executable, "-m", "durable.devtool.cli", "serve", str(bundled_example())]
    proc = AppProcess(
        [*cmd, "--port", "{port}"],
        work,
        env=clean_env(DURABLE_EXAMPLE_LEDGER=str(ledger)),
        name="durable-serve",
    )
    try:
        proc.start()
        r = CliRunner().invoke(cli, ["deploy", proc.url, "--admin", restate.admin_url, "--json"])
        assert r.exit_code == 0, r.stderr
        kinds = {s["name"]: s["kind"] for s in json.loads(r.stdout)["services"]}
        assert kinds == {
            "Counter": "object",
            "DeliveryManager": "object",
            "Greeter": "service",
            "OrderWorkflow": "object",
            "Payment": "service",
        }
        yield ledger
    finally:
        proc.stop()


def status_of(restate: RestateServer, oid: str) -> dict[str, Any]:
    r = httpx.post(f"{restate.ingress_url}/OrderWorkflow/{oid}/status", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for_status(restate: RestateServer, oid: str, want: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = status_of(restate, oid)
        if state.get("status") == want:
            return state
        time.sleep(0.05)
    raise AssertionError(f"order {oid} is not {want} after {timeout} s: {state}")


def place(restate: RestateServer, oid: str, **kw: Any) -> str:
    order = {"id": oid, "items": ["pizza"], "total_cents": 1250, **kw}
    r = httpx.post(f"{restate.ingress_url}/OrderWorkflow/{oid}/process/send", json=order)
    assert r.status_code == 202, r.text
    return r.json()["invocationId"]


def sql_state(restate: RestateServer, service: str, key: str) -> dict[str, Any]:
    rows = restate.query(
        f"SELECT key, value_utf8 FROM state WHERE service_name = '{service}' "
        f"AND service_key = '{key}'"
    )
    return {row["key"]: json.loads(row["value_utf8"]) for row in rows}


def commands(restate: RestateServer, inv: str) -> list[tuple[str, str]]:
    """The invocation's journal commands (notifications left out): (type, detail)."""
    rows = restate.query(
        f"SELECT entry_type, name, entry_json FROM sys_journal WHERE id = '{inv}' ORDER BY index"
    )
    out = []
    for row in rows:
        kind = row["entry_type"]
        if not kind.startswith("Command: "):
            continue
        kind = kind.removeprefix("Command: ")
        body = json.loads(row["entry_json"])["Command"].get(kind, {})
        if kind in ("Call", "OneWayCall"):
            target = next(iter(body["request"]["invocation_target"].values()))
            detail = f"{target['name']}/{target['handler']}"
        elif kind in ("SetState", "GetEagerState", "GetLazyState", "ClearState"):
            detail = body.get("key", "")
        else:
            detail = row.get("name") or ""
        out.append((kind, detail))
    return out


def test_an_order_is_paid_slept_on_cooked_and_delivered(restate, ledger) -> None:
    started = time.monotonic()
    inv = place(restate, "o1", delivery_delay=1500, ride_ms=500)
    state = wait_for_status(restate, "o1", "AT_RESTAURANT")
    assert time.monotonic() - started >= 1.5  # the durable sleep held it
    charges = [line.split() for line in ledger.read_text().splitlines()]
    assert [c[:3] for c in charges] == [["charge", "o1", "1250"]]  # paid, once

    ticket = state["restaurant_ticket"]
    r = httpx.post(
        f"{restate.ingress_url}/restate/awakeables/{ticket}/resolve", json="ready", timeout=30
    )
    assert r.status_code == 202, r.text
    r = httpx.get(f"{restate.ingress_url}/restate/invocation/{inv}/attach", timeout=60)
    assert r.status_code == 200, r.text
    driver = r.json().removeprefix("order o1 is on its way with ")
    assert driver in DRIVERS, r.json()

    final = wait_for_status(restate, "o1", "DELIVERED")  # the delayed send arrived
    assert final["driver"] == final["delivered_by"] == driver

    # Restate's own records: the state of both objects, and the order's journal
    assert sql_state(restate, "OrderWorkflow", "o1") == {
        "status": "DELIVERED",
        "restaurant_ticket": ticket,
        "driver": driver,
        "delivered_by": driver,
    }
    assert sql_state(restate, "DeliveryManager", "o1") == {"driver": driver}
    journal = commands(restate, inv)
    expected = [
        ("Input", ""),
        ("SetState", "status"),
        ("Run", "token"),
        ("Call", "Payment/charge"),
        ("SetState", "status"),
        ("Sleep", ""),
        ("SetState", "status"),
        ("SetState", "restaurant_ticket"),
        ("Run", "send to restaurant"),
        ("SetState", "status"),
        ("Call", "DeliveryManager/start_delivery"),
        ("SetState", "status"),
        ("SetState", "driver"),
        ("Output", ""),
    ]
    it = iter(journal)
    missing = [e for e in expected if e not in it]  # in this order, others between
    assert not missing, f"not in the journal, in order: {missing}\njournal: {journal}"
    row = restate.wait_status(inv, "completed")
    assert row["target"] == "OrderWorkflow/o1/process" and row["completion_result"] == "success"


def test_a_rejected_order_is_refunded(restate, ledger) -> None:
    inv = place(restate, "o2")
    ticket = wait_for_status(restate, "o2", "AT_RESTAURANT")["restaurant_ticket"]
    r = httpx.post(
        f"{restate.ingress_url}/restate/awakeables/{ticket}/reject",
        content=b"out of dough",
        headers={"content-type": "text/plain"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    r = httpx.get(f"{restate.ingress_url}/restate/invocation/{inv}/attach", timeout=60)
    assert r.status_code >= 400 and "out of dough" in r.json()["message"], r.text
    state = status_of(restate, "o2")
    assert state["status"] == "CANCELLED: out of dough"
    assert sql_state(restate, "OrderWorkflow", "o2")["status"] == "CANCELLED: out of dough"
    moves = [line.split()[:2] for line in ledger.read_text().splitlines()]
    assert [m for m in moves if m[1] == "o2"] == [["charge", "o2"], ["refund", "o2"]]
    assert restate.wait_status(inv, "completed")["completion_result"] == "failure"


def test_a_cancelled_order_is_refunded(restate, ledger) -> None:
    """Cancelled through Restate's admin API while it waits for the restaurant: the
    handler sees durable's CancelledError, refunds, and ends cancelled (as under durable
    dev: tests/integration/test_example_food_order.py)."""
    inv = place(restate, "o3")
    wait_for_status(restate, "o3", "AT_RESTAURANT")
    assert restate.act("cancel", inv).status_code == 202
    r = httpx.get(f"{restate.ingress_url}/restate/invocation/{inv}/attach", timeout=60)
    assert r.status_code == 409, r.text
    assert status_of(restate, "o3")["status"] == "CANCELLED: cancelled"
    moves = [line.split()[:2] for line in ledger.read_text().splitlines()]
    assert [m for m in moves if m[1] == "o3"] == [["charge", "o3"], ["refund", "o3"]]
