"""Small truths against a real `durable dev`: action answers say the new status in
words, and input errors name the field path in pydantic's style."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

APP = """
from dataclasses import dataclass
from datetime import timedelta

from durable import Context, Service, TerminalError

@dataclass
class Item:
    sku: str
    qty: int

@dataclass
class Order:
    id: str
    items: list[Item]
    note: str = ""

jobs = Service("Jobs")

@jobs.handler()
async def nap(ctx: Context, n: int) -> int:
    await ctx.sleep(timedelta(hours=1))
    return n

@jobs.handler()
async def careful(ctx: Context, n: int) -> str:
    try:
        await ctx.sleep(timedelta(hours=1))
    except TerminalError:
        await ctx.run("undo", lambda: None)
        return "compensated"
    return "slept"

@jobs.handler()
async def place(ctx: Context, order: Order) -> int:
    return sum(i.qty for i in order.items)
"""


@pytest.fixture
def srv(write_app, dev_server):
    return dev_server(write_app(APP), extra=["--suspend-after", "0.1"])


def wait_status(srv, inv: str, status: str) -> None:
    import time

    deadline = time.monotonic() + 20
    while httpx.get(f"{srv.admin_url}/api/invocations/{inv}", timeout=5).json()["status"] != status:
        assert time.monotonic() < deadline, f"{inv} never became {status}"
        time.sleep(0.05)


def test_a_cancel_answers_with_the_status_it_ends_in(srv):
    def send(handler: str) -> str:
        r = httpx.post(f"{srv.url}/Jobs/{handler}/send", json=1, timeout=10)
        return r.json()["invocationId"]

    nap, careful = send("nap"), send("careful")
    wait_status(srv, nap, "suspended")
    wait_status(srv, careful, "suspended")
    r = httpx.post(f"{srv.admin_url}/api/invocations/{nap}/cancel", timeout=10)
    assert r.status_code == 200
    assert r.json() == {
        "id": nap,
        "action": "cancel",
        "status": "cancelled",
        "message": "cancelled",
    }
    r = httpx.post(f"{srv.admin_url}/api/invocations/{careful}/cancel", timeout=10).json()
    assert r["status"] == "completed"
    assert r["message"] == "it ended completed (its handler handled the cancellation)"
    r = httpx.post(f"{srv.admin_url}/api/invocations/{send('nap')}/pause", timeout=10).json()
    assert r["status"] == "paused" and r["message"] == "paused: it runs again when resumed"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"id": "o1"},
            "1 validation error for Order: items: field required",
        ),
        (
            {"id": "o1", "items": "abc"},
            "1 validation error for Order: items: expected a JSON array, got str",
        ),
        (
            {"id": "o1", "items": [{"sku": "a", "qty": "two"}]},
            "1 validation error for Order: items.0.qty: expected an integer, got str",
        ),
        (
            {"id": "o1", "items": [], "colour": "red"},
            "1 validation error for Order: colour: unknown field (fields: id, items, note)",
        ),
        (
            {"items": [{"qty": 1}]},
            "2 validation errors for Order: id: field required; items.0.sku: field required",
        ),
    ],
)
def test_input_errors_name_the_field_path(srv, body, message):
    r = httpx.post(f"{srv.url}/Jobs/place", json=body, timeout=10)
    assert r.status_code == 400, r.text
    got = r.json()["message"]
    assert message in got, got
    assert "__init__" not in got and "positional" not in got
