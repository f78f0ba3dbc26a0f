"""Tests of the food-order flow with durable.testing (virtual clock, in-process engine)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from app import Order, delivery, orders, process, status

from durable import TerminalError
from durable.testing import Runtime


def run(coro) -> None:
    asyncio.run(coro)


async def state_when(rt: Runtime, key: str, status: str) -> dict:
    """The order's state once it reaches ``status`` (ctx.run bodies run in threads)."""
    for _ in range(500):
        state = await rt.state("OrderWorkflow", key)
        if state.get("status") == status:
            return state
        await asyncio.sleep(0.01)
    raise AssertionError(f"order {key} never reached {status}: {state}")


def test_an_order_is_paid_prepared_and_delivered():
    async def main() -> None:
        async with Runtime([orders, delivery]) as rt:
            order = Order("order-1", ["pizza"], 12.5, delivery_delay_ms=30 * 60 * 1000)
            inv = await rt.send(process, order, key="order-1")
            await state_when(rt, "order-1", "PAID")
            assert await rt.call(status, key="order-1") == "PAID"
            await rt.advance(timedelta(minutes=30))  # the delivery delay fires at once
            state = await state_when(rt, "order-1", "PREPARING")
            await rt.resolve_awakeable(state["awakeable"], True)  # the restaurant is done
            assert await rt.output(inv) == "DELIVERED"
            assert (await rt.state("Delivery", "order-1"))["items"] == ["pizza"]
            assert (await rt.state("OrderWorkflow", "order-1"))["status"] == "DELIVERED"

    run(main())


def test_a_refused_payment_fails_the_order():
    async def main() -> None:
        async with Runtime([orders, delivery]) as rt:
            with pytest.raises(TerminalError) as e:
                await rt.call(process, Order("order-2", ["caviar"], 5000.0), key="order-2")
            assert e.value.status_code == 402
            assert await rt.call(status, key="order-2") == "REJECTED"

    run(main())
