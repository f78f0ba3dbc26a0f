"""Threads for synchronous ctx.run bodies (durable.bodythreads)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest
from durable.bodythreads import run_in_thread

pytestmark = pytest.mark.timeout(20)

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def test_result_exception_and_context_reach_the_caller():
    VAR.set("from the handler")
    loop_thread = threading.get_ident()
    seen = await run_in_thread(lambda: (VAR.get(), threading.get_ident() != loop_thread))
    assert seen == ("from the handler", True)
    with pytest.raises(KeyError, match="nope"):
        await run_in_thread(lambda: {}["nope"])

    def stop():
        raise StopIteration

    with pytest.raises(RuntimeError, match="StopIteration"):
        await run_in_thread(stop)


async def test_blocking_bodies_run_side_by_side_and_do_not_block_the_loop():
    t0 = time.monotonic()
    ticks = 0

    async def tick():
        nonlocal ticks
        while time.monotonic() - t0 < 0.3:
            ticks += 1
            await asyncio.sleep(0.01)

    results = await asyncio.gather(
        *(run_in_thread(time.sleep, 0.3) for _ in range(4)), tick(), return_exceptions=True
    )
    assert results == [None] * 5
    assert time.monotonic() - t0 < 1.0  # four 0.3 s sleeps at once, not one after another
    assert ticks >= 10  # the loop kept running meanwhile


async def test_a_cancelled_wait_leaves_the_loop_healthy():
    started = threading.Event()
    fut = run_in_thread(lambda: (started.set(), time.sleep(0.1)))
    await asyncio.to_thread(started.wait, 5)
    fut.cancel()
    await asyncio.sleep(0.2)  # the body ends; its result is dropped without an error
    assert await run_in_thread(lambda: 42) == 42


def test_results_go_to_the_loop_that_asked():
    async def ask(n):
        return await asyncio.gather(*(run_in_thread(lambda i=i: i * n) for i in range(20)))

    out = {}

    def in_thread(n):
        out[n] = asyncio.run(ask(n))

    threads = [threading.Thread(target=in_thread, args=(n,)) for n in (2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert out == {2: [i * 2 for i in range(20)], 3: [i * 3 for i in range(20)]}
