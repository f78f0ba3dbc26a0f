"""{{project_name}}: the food-order example.

Run it with `durable dev` (it finds app.py in this folder).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from durable import ObjectContext, ObjectSharedContext, TerminalError, VirtualObject, getLogger

log = getLogger("food-order")


@dataclass
class Order:
    id: str
    items: list[str] = field(default_factory=list)
    total: float = 0.0
    delivery_delay_ms: int = 1000


def charge(order_id: str, total: float, token: str) -> bool:
    """The payment provider (here: accepts any order up to 1000)."""
    log.info("charging %s for order %s (token %s)", total, order_id, token)
    return 0 < total <= 1000


def ask_restaurant(order_id: str, awakeable_id: str) -> None:
    """Tell the restaurant to prepare the order; it calls back on the awakeable."""
    print(
        f"[restaurant] preparing {order_id}; when ready: "
        f"durable awakeables resolve {awakeable_id} true"
    )


def pick_courier(order_id: str) -> str:
    return f"courier-{uuid.uuid4().hex[:6]}"


orders = VirtualObject("OrderWorkflow")
delivery = VirtualObject("Delivery")


@orders.handler()
async def process(ctx: ObjectContext, order: Order) -> str:
    """Pay, wait, have the food prepared, deliver."""
    ctx.set("status", "CREATED")
    token = await ctx.run("token", lambda: str(uuid.uuid4()))
    paid = await ctx.run("payment", charge, order.id, order.total, token)
    if not paid:
        ctx.set("status", "REJECTED")
        raise TerminalError(f"payment for order {order.id} was refused", 402)
    ctx.set("status", "PAID")
    await ctx.sleep(timedelta(milliseconds=order.delivery_delay_ms))
    awakeable_id, prepared = ctx.awakeable()
    ctx.set("awakeable", awakeable_id)
    await ctx.run("prepare", ask_restaurant, order.id, awakeable_id)
    ctx.set("status", "PREPARING")
    await prepared
    ctx.set("status", "READY")
    courier = await ctx.object_call(start_delivery, key=order.id, arg=order)
    ctx.set("courier", courier)
    ctx.set("status", "DELIVERED")
    return "DELIVERED"


@orders.handler(kind="shared")
async def status(ctx: ObjectSharedContext) -> str | None:
    """Where the order is (shared: answers while process waits)."""
    return await ctx.get("status", type_hint=str)


@delivery.handler()
async def start_delivery(ctx: ObjectContext, order: Order) -> str:
    """Assign a courier to the order."""
    courier = await ctx.run("courier", pick_courier, order.id)
    ctx.set("courier", courier)
    ctx.set("items", order.items)
    return courier
