"""{{project_name}}: a durable service and a virtual object.

Run it with `durable dev` (it finds app.py in this folder).
"""

from __future__ import annotations

from durable import Context, ObjectContext, ObjectSharedContext, Service, VirtualObject

greeter = Service("Greeter")


@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    """Greets someone; the greeting is a journaled step, made once even on retries."""
    return await ctx.run("make greeting", lambda: f"Hello {name}!")


counter = VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    """Adds n to this key's counter (calls on one key run one at a time)."""
    total = (await ctx.get("count", type_hint=int) or 0) + n
    ctx.set("count", total)
    return total


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    """The counter's value (shared: runs beside add, reads only)."""
    return await ctx.get("count", type_hint=int) or 0
