"""Tests of the app with durable.testing: the real engine, in-process."""

from __future__ import annotations

import asyncio

from app import add, counter, get, greet, greeter

from durable.testing import Runtime


def test_greet():
    async def main() -> None:
        async with Runtime([greeter]) as rt:
            assert await rt.call(greet, "Ann") == "Hello Ann!"

    asyncio.run(main())


def test_counter_keeps_state_per_key():
    async def main() -> None:
        async with Runtime([counter]) as rt:
            assert await rt.call(add, 2, key="a") == 2
            assert await rt.call(add, 3, key="a") == 5
            assert await rt.call(add, 1, key="b") == 1
            assert await rt.call(get, key="a") == 5
            assert await rt.state("Counter", "a") == {"count": 5}

    asyncio.run(main())
