"""The TUI under a pilot against a real `durable dev` process (over its admin API)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from durable.devtool.tui.app import TuiApp
from durable.devtool.tui.screens import AwakeablesScreen, InvocationScreen
from durable.devtool.tui.screens.dialogs import ConfirmDialog, ResolveDialog
from durable.devtool.tui.widgets import (
    ConnectionBanner,
    InvocationTable,
    JournalTable,
    PendingTable,
    StatePanel,
)
from rich.console import Console
from tui_stub import screen_text, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

APP = """
from durable import VirtualObject, ObjectContext

orders = VirtualObject("Order")

@orders.handler()
async def process(ctx: ObjectContext, n: int) -> dict:
    ctx.set("count", n)                               # entry 1
    await ctx.run("charge", lambda: f"charged {n}")   # entry 2
    ctx.set("status", "charged")                      # entry 3
    aw_id, promise = ctx.awakeable()                  # entry 4
    ctx.set("awakeable", aw_id)                       # entry 5
    got = await promise
    ctx.set("status", "done")
    return {"got": got, "count": n}
"""
SIZE = (100, 30)


@pytest.fixture
def srv(write_app, dev_server):
    return dev_server(write_app(APP), extra=["--suspend-after", "0.1", "--no-reload"])


class Recording(httpx.AsyncBaseTransport):
    """The real HTTP transport, with a list of the requests the TUI sent."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def posts(self) -> list[str]:
        return [r.url.path for r in self.requests if r.method == "POST"]


async def send(srv, path: str, body: Any) -> str:
    async with httpx.AsyncClient() as c:
        r = await c.post(srv.url + path + "/send", json=body, timeout=30)
    assert r.status_code == 202, r.text
    return r.json()["invocationId"]


async def show(srv, path: str) -> dict:
    async with httpx.AsyncClient() as c:
        return (await c.get(srv.admin_url + path, timeout=30)).json()


async def wait_status(srv, inv: str, *statuses: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = await show(srv, f"/api/invocations/{inv}")
        if body.get("status") in statuses:
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


def plain(widget) -> str:
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)


def plain_entry(screen) -> str:
    """The entry panel's text (a group of Rich renderables)."""
    console = Console(width=60, color_system=None)
    with console.capture() as cap:
        console.print(screen.query_one("#entry").content)
    return cap.get()


def rows(app: TuiApp) -> dict[str, dict]:
    return app.screen.query_one(InvocationTable).items


async def type_text(pilot, text: str) -> None:
    await pilot.press(*["space" if c == " " else c for c in text])


async def open_invocation(pilot, inv: str, key: str) -> None:
    """Filter the list to one key by typing, then open the invocation."""
    app = pilot.app
    await wait_for(pilot, lambda: inv in rows(app), what=f"{inv} in the table")
    await pilot.press("slash")
    await type_text(pilot, f"Order key:{key}")
    await wait_for(pilot, lambda: list(rows(app)) == [inv], what="the filtered table")
    await pilot.press("enter")  # from the filter box to the table
    await pilot.press("enter")  # open
    await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen), what="the invocation")
    await wait_for(pilot, lambda: app.screen.query_one(JournalTable).row_count >= 6)


async def test_step_through_the_journal_and_watch_the_state(srv):
    inv = await send(srv, "/Order/o1/process", 5)
    await wait_status(srv, inv, "suspended")
    app = TuiApp(srv.admin_url, interval=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await open_invocation(pilot, inv, "o1")
        screen = app.screen
        journal = screen.query_one(JournalTable)
        panel = screen.query_one(StatePanel)
        assert journal.cursor_row == 0 and plain(panel) == "no state yet"
        assert [e["kind"] for e in journal.entries[:6]] == [
            "input",
            "set_state",
            "run",
            "set_state",
            "awakeable",
            "set_state",
        ]
        await pilot.press("down")  # entry 1: ctx.set("count", 5)
        await wait_for(pilot, lambda: "count = 5" in plain(panel))
        assert plain(panel) == "+ count = 5"
        assert "after entry 1" in screen.query_one("#state-box").border_title
        await pilot.press("down", "down")  # entry 3: ctx.set("status", "charged")
        await wait_for(pilot, lambda: "status" in plain(panel))
        assert plain(panel) == '  count = 5\n+ status = "charged"'
        entry = plain_entry(screen)
        assert "#3 set_state 'status'" in entry and '"charged"' in entry
        await pilot.press("up")  # entry 2: the run, its result pretty-printed
        await wait_for(pilot, lambda: "charged 5" in plain_entry(app.screen))
        assert plain(panel) == "  count = 5"


async def test_resolve_an_awakeable_through_the_dialog(srv):
    inv = await send(srv, "/Order/o1/process", 2)
    await wait_status(srv, inv, "suspended")
    app = TuiApp(srv.admin_url, interval=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AwakeablesScreen))
        table = app.screen.query_one(PendingTable)
        await wait_for(pilot, lambda: table.selected and table.selected["invocation_id"] == inv)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResolveDialog))
        await type_text(pilot, '{"ok": true}')
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AwakeablesScreen), what="closed")
        done = await wait_status(srv, inv, "completed")
        assert done["output_value"] == {"got": {"ok": True}, "count": 2}
        await wait_for(pilot, lambda: table.row_count == 0, what="the list emptied")
        await pilot.press("i")
        await wait_for(
            pilot, lambda: rows(app)[inv]["status"] == "completed", what="completed in the list"
        )
        assert any("resolved awk_" in line.message for line in app.log_lines)


async def test_invalid_json_in_the_dialog_shows_an_error_and_sends_nothing(srv):
    inv = await send(srv, "/Order/o1/process", 3)
    await wait_status(srv, inv, "suspended")
    recording = Recording()
    app = TuiApp(srv.admin_url, interval=0.3, transport=recording)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        table = app.screen.query_one(PendingTable)
        await wait_for(pilot, lambda: table.selected is not None)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResolveDialog))
        dialog = app.screen
        await type_text(pilot, "{ok: yes")
        assert "not JSON yet" in plain(dialog.query_one("#hint"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog.query_one("#error").has_class("-shown"))
        assert "not valid JSON" in plain(dialog.query_one("#error"))
        assert "nothing was sent" in plain(dialog.query_one("#error"))
        await pilot.click("#ok")  # the button too
        await pilot.pause(0.5)
        assert app.screen is dialog and recording.posts == []
        assert (await show(srv, f"/api/invocations/{inv}"))["status"] == "suspended"
        pending = await show(srv, "/api/awakeables")
        assert [a["invocation_id"] for a in pending["awakeables"]] == [inv]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AwakeablesScreen))
        assert recording.posts == []


async def test_kill_from_the_list_with_a_confirmation(srv):
    inv = await send(srv, "/Order/o7/process", 1)
    await wait_status(srv, inv, "suspended")
    app = TuiApp(srv.admin_url, interval=0.3)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: table.selected and table.selected["id"] == inv)
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "Kill " + inv in screen_text(app)
        await pilot.press("n")  # no: nothing happens
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmDialog))
        assert (await show(srv, f"/api/invocations/{inv}"))["status"] == "suspended"
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_status(srv, inv, "killed")
        await wait_for(pilot, lambda: rows(app)[inv]["status"] == "killed", what="killed row")
        assert table.selected["id"] == inv  # the cursor stayed on it
        assert app.screen.check_action("act", ("kill",)) is None  # nothing more to kill


async def test_banner_while_the_runtime_is_down_then_recovers(srv):
    first = await send(srv, "/Order/o1/process", 1)
    await wait_status(srv, first, "suspended")
    app = TuiApp(srv.admin_url, interval=0.3)
    async with app.run_test(size=SIZE) as pilot:
        banner = app.screen.query_one(ConnectionBanner)
        await wait_for(pilot, lambda: first in rows(app))
        assert not banner.has_class("-visible")
        admin_url = srv.admin_url
        await asyncio.to_thread(srv.stop)
        await wait_for(pilot, lambda: banner.has_class("-visible"), what="the banner")
        assert banner.display
        assert f"The runtime at {admin_url} does not answer" in screen_text(app)
        await wait_for(pilot, lambda: app.outage.attempts >= 2, what="retries")
        assert first in rows(app)  # what was shown stays
        await asyncio.to_thread(srv.start)
        assert srv.admin_url == admin_url  # the same ports
        await wait_for(pilot, lambda: not banner.has_class("-visible"), timeout=20)
        second = await send(srv, "/Order/o2/process", 2)
        await wait_for(pilot, lambda: second in rows(app), what="new data after the restart")
        messages = [line.message for line in app.log_lines]
        assert any(m.startswith("lost the runtime") for m in messages)
        assert any("answers again" in m for m in messages)
        assert "the runtime restarted" in messages


async def test_the_app_error_banner_and_a_cancel_that_says_cancelled(write_app, dev_server):
    path = write_app(APP)
    srv = dev_server(path, extra=["--suspend-after", "0.1"])
    waiting = await send(srv, "/Order/o1/process", 1)
    await wait_status(srv, waiting, "suspended")
    app = TuiApp(srv.admin_url, interval=0.3)
    async with app.run_test(size=(120, 30)) as pilot:
        banner = app.screen.query_one(ConnectionBanner)
        table = app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: table.selected and table.selected["id"] == waiting)
        # a cancel answers with the status it ends in, not the one before
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        said = f"cancel {waiting}: cancelled"
        await wait_for(pilot, lambda: any(x.message == said for x in app.log_lines), what=said)
        # the app stops loading: the header and a banner say so, with file, line and since
        path.write_text(APP.replace("-> dict:", "-> dict"))
        await wait_for(pilot, lambda: banner.has_class("-visible"), timeout=20, what="banner")
        text = " ".join(screen_text(app).split())
        assert "⚠ app does not load" in text
        assert "The app does not load since " in text and f"{path.name}, line 7" in text
        ready = await send(srv, "/Order/o2/process", 2)
        await wait_for(pilot, lambda: ready in rows(app), what="the new invocation")
        await wait_for(
            pilot,
            lambda: (rows(app)[ready].get("waits_on") or "").startswith("the app to load"),
            what="waiting on the app",
        )
        path.write_text(APP)
        await wait_for(pilot, lambda: not banner.has_class("-visible"), timeout=20)
        await wait_status(srv, ready, "suspended")
