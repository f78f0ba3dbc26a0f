"""The TUI's timeline, call tree and text search under a pilot, against a real
`durable dev` process."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from durable.devtool.tui.app import TuiApp
from durable.devtool.tui.screens import InvocationScreen
from durable.devtool.tui.screens.calltree import CallTreeScreen
from durable.devtool.tui.widgets import InvocationTable, JournalTable, TimelineTable
from tui_stub import screen_text, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

APP = """
import time
from datetime import timedelta
from durable import Service, Context

tree = Service("Tree")

@tree.handler()
async def root(ctx: Context, n: int) -> str:
    await ctx.run("work", lambda: time.sleep(0.05) or "done")
    await ctx.sleep(timedelta(milliseconds=900))
    got = await ctx.service_call(mid, n)
    ctx.service_send(leaf, "sent")
    return got

@tree.handler()
async def mid(ctx: Context, n: int) -> str:
    return await ctx.service_call(leaf, f"from mid {n}")

@tree.handler()
async def leaf(ctx: Context, word: str) -> str:
    return word.upper()
"""


async def _tree(srv, inv: str) -> dict:
    async with httpx.AsyncClient(base_url=srv.admin_url, timeout=30) as c:
        deadline = time.monotonic() + 20
        while True:
            t = (await c.get(f"/api/invocations/{inv}/tree")).json()
            done = [n for n in t["nodes"] if n["status"] == "completed"]
            if len(done) == 4 or time.monotonic() > deadline:
                return t
            await asyncio.sleep(0.1)


async def test_timeline_call_tree_and_search(write_app, dev_server):
    srv = dev_server(write_app(APP), extra=["--no-reload"])
    async with httpx.AsyncClient() as c:
        r = await c.post(srv.url + "/Tree/root", json=7, timeout=30)
    assert r.json() == "FROM MID 7"
    async with httpx.AsyncClient() as c:
        page = (await c.get(srv.admin_url + "/api/invocations?handler=root")).json()
    root = page["invocations"][0]["id"]
    tree = await _tree(srv, root)
    ids = {(n["handler"], n["via"]): n["id"] for n in tree["nodes"]}
    mid = ids[("mid", "call")]
    leaf_of_mid = ids[("leaf", "call")]

    app = TuiApp(srv.admin_url, interval=0.3)
    async with app.run_test(size=(110, 32)) as pilot:
        table = lambda: app.screen.query_one(InvocationTable).items  # noqa: E731
        await wait_for(pilot, lambda: len(table()) == 4, what="four invocations")
        # the filter box searches ids, inputs, outputs and errors
        await pilot.press("slash", *"from", "space", *"MID")
        await wait_for(
            pilot, lambda: set(table()) == {root, mid, leaf_of_mid}, what="three matches"
        )
        assert "text~from MID" in screen_text(app)
        await pilot.press("escape")

        app.push_screen(InvocationScreen(root))
        await wait_for(pilot, lambda: app.screen.query_one(JournalTable).row_count >= 6)
        await pilot.press("w")  # the journal as bars
        timeline = app.screen.query_one(TimelineTable)
        await wait_for(pilot, lambda: timeline.row_count >= 6 and timeline.display)
        assert not app.screen.query_one(JournalTable).display
        bars = {b.kind: b for b in timeline.bars}
        assert bars["sleep"].end - bars["sleep"].start > 0.5  # 0.9 s of about 1 s
        assert bars["run"].end - bars["run"].start < 0.2
        assert bars["call"].link == mid
        await pilot.pause()
        text = screen_text(app)
        assert re.search(r"2 sleep +─*█{20,}─* +9\d\dms", text), text
        await pilot.press("w")
        assert app.screen.query_one(JournalTable).display

        await pilot.press("T")  # the whole tree
        await wait_for(pilot, lambda: isinstance(app.screen, CallTreeScreen))
        tree_table = app.screen.query_one(TimelineTable)
        await wait_for(pilot, lambda: tree_table.row_count == 4, what="four rows")
        assert [b.link for b in tree_table.bars][:3] == [root, mid, leaf_of_mid]
        assert f"4 invocations from {root}" in screen_text(app)
        assert tree_table.cursor_row == 0  # opened from the root
        await pilot.press("down", "enter")  # open mid
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen))
        assert app.screen.invocation_id == mid
        await wait_for(pilot, lambda: app.screen.invocation is not None)
        assert f"called by {root} entry" in screen_text(app)
        await pilot.press("f")  # entry 0 starts nothing: its caller
        await wait_for(pilot, lambda: app.screen.invocation_id == root, what="the caller")
