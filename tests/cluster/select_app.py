"""A durable app racing two awakeables with ``durable.select`` and ``as_completed``:
served on Restate by `durable serve` (tests/cluster/test_pull_food_order.py), whose
journal keeps no entry for either combinator."""

from __future__ import annotations

from datetime import timedelta

import durable
from durable import Context, Service

race = Service("Race")


@race.handler()
async def pick(ctx: Context, _: str) -> str:
    """The name of the awakeable resolved first, then both values in completion order."""
    a_id, a = ctx.awakeable(type_hint=str)
    b_id, b = ctx.awakeable(type_hint=str)
    await ctx.run("publish", lambda: [a_id, b_id])
    name, first = await durable.select(a=a, b=b, late=ctx.sleep(timedelta(minutes=5)))
    both = [await f async for f in durable.as_completed(a, b)]
    return f"{name}:{first}:{','.join(both)}"
