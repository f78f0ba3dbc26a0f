"""The bundled example: what `durable dev` serves when you give it no app.

A food order (see README.md in this folder for a walk-through with curl)::

    curl -X POST localhost:8080/OrderWorkflow/o1/process/send \\
         -d '{"id": "o1", "items": ["pizza"], "total_cents": 1250, "delivery_delay": 2000}'
    curl -X POST localhost:8080/OrderWorkflow/o1/status

and two small services::

    curl -X POST localhost:8080/Greeter/greet -d '"Ann"'
    curl -X POST localhost:8080/Counter/my-key/add -d '5'
    curl -X POST localhost:8080/Counter/my-key/get
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from durable import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    Service,
    TerminalError,
    VirtualObject,
)

greeter = Service("Greeter")


@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    """Greets a person; the greeting count is a journaled step."""
    greeting = await ctx.run("make greeting", lambda: f"Hello {name}!")
    return greeting


counter = VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    """Adds n to the counter of this key and returns the new total."""
    total = (await ctx.get("count", type_hint=int) or 0) + n
    ctx.set("count", total)
    return total


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    """The counter's current value (a shared handler: never waits for add)."""
    return await ctx.get("count", type_hint=int) or 0


# -- the food order ------------------------------------------------------------------


@dataclass
class Order:
    id: str
    items: list[str]
    total_cents: int
    delivery_delay: int = 0  # ms before the restaurant starts (an order for later)
    ride_ms: int = 3000  # how long the driver's ride takes
    restaurant_timeout_s: int = 3600  # how long to wait for the restaurant


@dataclass
class PaymentRequest:
    order_id: str
    cents: int
    token: str  # the payment provider's idempotency key


@dataclass
class Receipt:
    order_id: str
    cents: int
    token: str
    refunded: bool = False
    lines: list[str] = field(default_factory=list)


def _ledger(line: str) -> None:
    """The fake payment provider: prints, and appends to $DURABLE_EXAMPLE_LEDGER (fsynced)."""
    print(f"[payment provider] {line}")
    path = os.environ.get("DURABLE_EXAMPLE_LEDGER")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


payments = Service("Payment")


@payments.handler()
async def charge(ctx: Context, req: PaymentRequest) -> Receipt:
    """Charges the card once: the provider call is a journaled step."""
    await ctx.run("charge card", lambda: _ledger(f"charge {req.order_id} {req.cents} {req.token}"))
    return Receipt(req.order_id, req.cents, req.token)


@payments.handler()
async def refund(ctx: Context, receipt: Receipt) -> Receipt:
    await ctx.run(
        "refund card",
        lambda: _ledger(f"refund {receipt.order_id} {receipt.cents} {receipt.token}"),
    )
    return Receipt(receipt.order_id, receipt.cents, receipt.token, refunded=True)


def _send_to_restaurant(order_id: str, items: list[str], awakeable_id: str) -> None:
    """The restaurant is an outside system: it gets the awakeable id and calls back."""
    print(
        f"[restaurant] order {order_id} ({', '.join(items)}) is being prepared. When it is "
        f"ready: curl -X POST localhost:8080/restate/awakeables/{awakeable_id}/resolve "
        "-d '\"ready\"'"
    )


orders = VirtualObject("OrderWorkflow")


@orders.handler()
async def process(ctx: ObjectContext, order: Order) -> str:
    """Pay, wait for the delivery slot, have the restaurant cook, hand over to a driver."""
    ctx.set("status", "CREATED")
    token = await ctx.run("token", lambda: str(uuid.uuid4()))
    receipt = await ctx.service_call(charge, PaymentRequest(order.id, order.total_cents, token))
    ctx.set("status", "PAID")

    await ctx.sleep(timedelta(milliseconds=order.delivery_delay))  # durable timer

    ready_id, ready = ctx.awakeable(type_hint=str)  # resolved by the restaurant
    ctx.set("status", "AT_RESTAURANT")
    ctx.set("restaurant_ticket", ready_id)
    await ctx.run("send to restaurant", _send_to_restaurant, order.id, order.items, ready_id)
    try:
        await ready.with_timeout(timedelta(seconds=order.restaurant_timeout_s))
    except TerminalError as e:  # rejected by the restaurant, timed out, or cancelled
        await ctx.service_call(refund, receipt)
        ctx.set("status", f"CANCELLED: {e.message}")
        raise

    ctx.set("status", "READY_FOR_PICKUP")
    driver = await ctx.object_call(start_delivery, key=order.id, arg=order)  # durable RPC
    ctx.set("status", "OUT_FOR_DELIVERY")
    ctx.set("driver", driver)
    return f"order {order.id} is on its way with {driver}"


@orders.handler()
async def mark_delivered(ctx: ObjectContext, driver: str) -> None:
    """Sent by the delivery manager when the ride is over."""
    ctx.set("status", "DELIVERED")
    ctx.set("delivered_by", driver)


@orders.handler(kind="shared")
async def status(ctx: ObjectSharedContext) -> dict[str, Any]:
    """The order's state: status, restaurant ticket (an awakeable id), driver."""
    return {name: await ctx.get(name) for name in await ctx.state_keys()}


delivery = VirtualObject("DeliveryManager")
DRIVERS = ["Ada", "Grace", "Linus", "Margaret"]


@delivery.handler()
async def start_delivery(ctx: ObjectContext, order: Order) -> str:
    """Assigns a driver, and tells the order when the ride is over (a delayed send)."""
    driver = DRIVERS[ctx.random().randrange(len(DRIVERS))]
    ctx.set("driver", driver)
    ctx.object_send(
        mark_delivered, key=order.id, arg=driver, send_delay=timedelta(milliseconds=order.ride_ms)
    )
    return driver
