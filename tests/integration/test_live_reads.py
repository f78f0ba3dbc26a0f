"""The engine's live-read surface (snapshot, live_row/status/journal, barrier, idle,
queue_position) on the real engine (durable.testing), and the admin views built on it:
the live status and the actions it allows, in the list and for one invocation."""

from __future__ import annotations

from datetime import timedelta

import durable.testing
import pytest
from durable import Context, ObjectContext, Service, VirtualObject
from durable.devtool.admin.views import list_invocations, show_invocation
from durable.devtool.store.queries import InvocationFilter

pytestmark = pytest.mark.timeout(60)

svc = Service("Live")


@svc.handler()
async def nap(ctx: Context, days: int) -> str:
    await ctx.sleep(timedelta(days=days))
    return "rested"


box = VirtualObject("Box")


@box.handler()
async def hold(ctx: ObjectContext, days: int) -> str:
    await ctx.sleep(timedelta(days=days))
    return "held"


async def views(rt: durable.testing.Runtime, inv_id: str) -> tuple[dict, dict]:
    """The invocation in the list and on its own, as the admin API shows them."""
    engine = rt.engine
    await engine.barrier()
    live = engine.snapshot(journal_of=inv_id)
    page = await engine.store.read(
        lambda cur: list_invocations(cur, live, InvocationFilter(), limit=100)
    )
    one = await engine.store.read(lambda cur: show_invocation(cur, live, inv_id))
    listed = next(i for i in page["invocations"] if i["id"] == inv_id)
    return listed, one


async def test_a_suspended_then_completed_invocation_reads_live_with_its_actions():
    async with durable.testing.Runtime([svc, box]) as rt:
        inv = await rt.send(nap, 2)
        await rt.settle()
        assert rt.engine.idle()
        assert rt.engine.live_status(inv) == "suspended"
        assert rt.engine.live_row(inv) is None  # suspended ones are not held whole
        listed, one = await views(rt, inv)
        assert listed["status"] == one["status"] == "suspended"
        assert listed["actions"] == one["actions"] == ["pause", "cancel", "kill"]

        await rt.advance(timedelta(days=3))
        assert await rt.output(inv) == "rested"
        assert rt.engine.live_status(inv) is None and rt.engine.live_journal(inv) is None
        listed, one = await views(rt, inv)
        assert listed["status"] == one["status"] == "completed"
        assert listed["actions"] == one["actions"] == ["purge"]


async def test_a_pending_invocation_shows_its_queue_position_and_cannot_be_paused():
    async with durable.testing.Runtime([svc, box]) as rt:
        first = await rt.send(hold, 1, key="b1")
        second = await rt.send(hold, 1, key="b1")
        await rt.settle()
        assert rt.engine.live_status(second) == "pending"
        assert rt.engine.queue_position(second) == 1
        assert rt.engine.snapshot().key_owner[("Box", "b1")] == first
        row = rt.engine.live_row(second)
        assert row is not None and row.status == "pending"
        journal = rt.engine.live_journal(second)
        assert journal is not None and [e.kind.value for e in journal] == ["input"]
        listed, one = await views(rt, second)
        assert listed["actions"] == one["actions"] == ["cancel", "kill"]
        assert one["queue_position"] == 1
        counts = rt.engine.counts()
        assert counts["pending"] == 1 and counts["suspended"] == 1
