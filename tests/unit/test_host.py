"""The executor host (durable.host) that the worker process and the inline link share,
and the handler look-ups (``find_handler``, ``ServiceInfo.handler``)."""

from __future__ import annotations

import asyncio
from typing import Any

import durable
import pytest
from durable.definitions import find_handler
from durable.host import ExecutorHost
from durable.messages import (
    Ack,
    AttemptFailed,
    Completion,
    EntryKind,
    JournalEntry,
    NewEntry,
    Output,
    Start,
)

pytestmark = pytest.mark.timeout(20)

svc = durable.Service("Hosted")


@svc.handler()
async def echo(ctx: durable.Context, n: int) -> int:
    return n


@svc.handler()
async def waits(ctx: durable.Context) -> str:
    _, fut = ctx.awakeable()
    return await fut


SERVICES = {svc.name: svc}


def start(handler: str, inv: str, epoch: int, arg: str = "null") -> Start:
    entry = JournalEntry(0, EntryKind.INPUT, None, arg, None, None, True)
    return Start(inv, "Hosted", handler, None, (entry,), epoch=epoch)


async def until(messages: list[Any], pred: Any) -> None:
    for _ in range(500):
        if any(pred(m) for m in messages):
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"not seen in {messages!r}")


async def test_a_start_runs_the_handler_and_the_executor_goes_when_it_ends():
    out: list[Any] = []
    host = ExecutorHost(SERVICES, out.append, suspend_after=5.0)
    host.receive(start("echo", "inv_1", 1, "41"))
    assert set(host.executors) == {"inv_1"}
    await until(out, lambda m: isinstance(m, Output))
    assert out == [Output("inv_1", 1, result="41")]
    await asyncio.sleep(0)
    assert host.executors == {}


async def test_a_stale_epoch_is_dropped_and_a_new_start_replaces_the_running_attempt():
    out: list[Any] = []
    host = ExecutorHost(SERVICES, out.append, suspend_after=5.0)
    host.receive(start("waits", "inv_2", 1))
    await until(out, lambda m: isinstance(m, NewEntry))
    first = host.executors["inv_2"]
    host.receive(start("waits", "inv_2", 2))  # moved: the old attempt is aborted
    second = host.executors["inv_2"]
    assert second is not first and first.closed
    await until(out, lambda m: isinstance(m, NewEntry) and m.epoch == 2)
    host.receive(Completion("inv_2", 1, 1, '"stale"'))  # for the aborted attempt
    host.receive(Ack("inv_9", 2, 1))  # for no invocation here
    await asyncio.sleep(0.02)
    assert not any(isinstance(m, Output) for m in out)
    host.receive(Completion("inv_2", 2, 1, '"fresh"'))
    await until(out, lambda m: isinstance(m, Output))
    assert out[-1] == Output("inv_2", 2, result='"fresh"')
    await host.stop()


async def test_a_start_for_a_missing_handler_pauses_the_invocation_with_a_fix():
    out: list[Any] = []
    host = ExecutorHost(SERVICES, out.append)
    host.receive(start("gone", "inv_3", 4))
    [failed] = out
    assert isinstance(failed, AttemptFailed) and failed.pause and failed.epoch == 4
    assert "Hosted/gone is not in the app" in failed.error and "restore the handler" in failed.error
    assert host.executors == {}


async def test_stop_ends_every_running_attempt():
    out: list[Any] = []
    host = ExecutorHost(SERVICES, out.append, suspend_after=5.0)
    host.receive(start("waits", "inv_4", 1))
    host.receive(start("waits", "inv_5", 1))
    await until(out, lambda m: isinstance(m, NewEntry) and m.invocation_id == "inv_5")
    await host.stop()
    assert host.executors == {}
    assert not any(isinstance(m, Output | AttemptFailed) for m in out)


def test_handler_lookups_find_a_handler_or_none():
    assert find_handler(SERVICES, "Hosted", "echo") is echo.__durable_handler__
    assert find_handler(SERVICES, "Hosted", "nope") is None
    assert find_handler(SERVICES, "Nobody", "echo") is None
    info = svc.info()
    assert info.handler("waits") is not None and info.handler("waits").name == "waits"
    assert info.handler("nope") is None
