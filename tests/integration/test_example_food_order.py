"""The bundled example's food order on the in-process runtime (virtual clock): the happy
path, a restaurant that never answers, and a cancelled order (refunded)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path

import durable.testing
import pytest
from durable import CancelledError, TerminalError
from durable.devtool.discovery import bundled_example

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DURABLE_EXAMPLE_LEDGER", str(tmp_path / "ledger.txt"))
    spec = importlib.util.spec_from_file_location("food_example", bundled_example())
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "food_example", mod)
    spec.loader.exec_module(mod)
    mod.ledger = tmp_path / "ledger.txt"
    return mod


def order(oid: str, **kw) -> dict:
    return {"id": oid, "items": ["pizza"], "total_cents": 1250, **kw}


def ledger(example) -> list[str]:
    return example.ledger.read_text().splitlines() if example.ledger.exists() else []


async def test_an_order_is_paid_cooked_and_delivered(example):
    services = [example.orders, example.payments, example.delivery]
    async with durable.testing.Runtime(services) as rt:
        inv = await rt.send(example.process, order("o1", delivery_delay=3_600_000), key="o1")
        await rt.settle()
        state = await rt.call(example.status, key="o1")
        assert state["status"] == "PAID"
        await rt.advance(timedelta(hours=1))
        state = await rt.call(example.status, key="o1")
        assert state["status"] == "AT_RESTAURANT"
        await rt.resolve_awakeable(state["restaurant_ticket"], "ready")
        assert (await rt.output(inv, example.process)).startswith("order o1 is on its way")
        await rt.advance(timedelta(seconds=3))
        state = await rt.call(example.status, key="o1")
        assert state["status"] == "DELIVERED" and state["delivered_by"] == state["driver"]
        assert [line.split()[:2] for line in ledger(example)] == [["charge", "o1"]]


async def test_a_restaurant_that_never_answers_times_out_and_refunds(example):
    services = [example.orders, example.payments, example.delivery]
    async with durable.testing.Runtime(services) as rt:
        inv = await rt.send(example.process, order("o2", restaurant_timeout_s=600), key="o2")
        await rt.settle()
        await rt.advance(timedelta(minutes=11))
        with pytest.raises(TerminalError) as err:  # the caller sees the handler's 408
            await rt.output(inv, example.process)
        assert err.value.status_code == 408
        state = await rt.call(example.status, key="o2")
        assert state["status"].startswith("CANCELLED: timed out")
        assert [line.split()[0] for line in ledger(example)] == ["charge", "refund"]


async def test_a_cancelled_order_is_refunded(example):
    services = [example.orders, example.payments, example.delivery]
    async with durable.testing.Runtime(services) as rt:
        inv = await rt.send(example.process, order("o3"), key="o3")
        await rt.settle()
        assert (await rt.call(example.status, key="o3"))["status"] == "AT_RESTAURANT"
        await rt.cancel(inv)
        with pytest.raises(CancelledError):
            await rt.output(inv, example.process)
        assert await rt.status(inv) == "cancelled"
        state = await rt.call(example.status, key="o3")
        assert state["status"] == "CANCELLED: cancelled"
        assert [line.split()[0] for line in ledger(example)] == ["charge", "refund"]
