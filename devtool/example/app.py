"""The bundled example: what `durable dev` serves when you give it no app.

Try it::

    curl -X POST localhost:8080/Greeter/greet -d '"Ann"'
    curl -X POST localhost:8080/Counter/my-key/add -d '5'
    curl -X POST localhost:8080/Counter/my-key/get
"""

from __future__ import annotations

from durable import Context, ObjectContext, ObjectSharedContext, Service, VirtualObject

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
