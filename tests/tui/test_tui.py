"""The TUI's behaviour over a stub admin API (fast): filters, live refresh, keys,
the command palette and help, what the dialogs send."""

from __future__ import annotations

import json

import pytest
from durable.devtool.tui.app import TuiApp
from durable.devtool.tui.filters import describe, parse_filter
from durable.devtool.tui.screens import (
    AwakeablesScreen,
    HelpScreen,
    InvocationScreen,
    InvocationsScreen,
    StateScreen,
)
from durable.devtool.tui.screens.dialogs import RejectDialog, ResolveDialog, RestartDialog
from durable.devtool.tui.widgets import InvocationTable, JournalTable, PendingTable
from tui_stub import INVOCATIONS, ORDER_O1, StubRuntime, _inv, inv_id, screen_text, wait_for

pytestmark = pytest.mark.timeout(30)

SERVICES = {"Order": ["process", "peek"], "OrderAudit": ["log"], "Signup": ["run"]}


def test_filter_text_becomes_the_api_filters():
    assert parse_filter("", SERVICES) == {}
    assert parse_filter("Signup", SERVICES) == {"service": "Signup"}
    assert parse_filter("sig", SERVICES) == {"service": "Signup"}  # the only one it starts
    assert parse_filter("order", SERVICES) == {"service": "Order"}  # exact beats prefix
    assert parse_filter("Ord", SERVICES) == {"q": "Ord"}  # two services: an id part
    assert parse_filter("Order/pro key:o1", SERVICES) == {
        "service": "Order",
        "handler": "process",
        "key": "o1",
    }
    assert parse_filter("since:10m inv_01h", SERVICES) == {"since": "10m", "q": "inv_01h"}
    assert parse_filter("x7k2 until:2024-05-01", SERVICES) == {
        "q": "x7k2",
        "until": "2024-05-01",
    }
    assert parse_filter("service:sig id:abc", SERVICES) == {"service": "Signup", "id": "abc"}
    assert parse_filter("out of tomatoes", SERVICES) == {"q": "out of tomatoes"}
    assert describe({"service": "Order", "id": "x7"}) == "service=Order id~x7"
    assert describe({"q": "out of"}) == "text~out of"


def _requests(stub: StubRuntime, path: str) -> list:
    return [r for r in stub.requests if r.url.path == path]


async def test_status_keys_and_typing_filter_the_list(stub: StubRuntime):
    app = stub.app()
    async with app.run_test() as pilot:
        table = app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: table.row_count == 10)
        await pilot.press("5")  # suspended
        await wait_for(pilot, lambda: table.row_count == 2)
        assert {i["status"] for i in table.items.values()} == {"suspended"}
        assert _requests(stub, "/api/invocations")[-1].url.params["status"] == "suspended"
        await pilot.press("7")  # and paused
        await wait_for(pilot, lambda: table.row_count == 3)
        assert _requests(stub, "/api/invocations")[-1].url.params["status"] == "suspended,paused"
        await pilot.press("slash", "s", "i", "g")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert _requests(stub, "/api/invocations")[-1].url.params["service"] == "Signup"
        assert "1 of 1 · service=Signup" in table.border_subtitle
        await pilot.press("escape")  # clears the text first
        await wait_for(pilot, lambda: table.row_count == 3)
        await pilot.press("escape")  # then the statuses
        await wait_for(pilot, lambda: table.row_count == 10)
        assert app.focused is table


async def test_refresh_keeps_the_cursor_on_the_same_invocation(stub: StubRuntime):
    app = stub.app(interval=0.2)
    async with app.run_test() as pilot:
        table = app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: table.row_count == 10)
        await pilot.press("down", "down", "down")
        chosen = table.selected["id"]
        assert chosen == INVOCATIONS[3]["id"]
        order_before = table._order
        # a status changes: the cell changes in place, the rows are not rebuilt
        stub.invocations[3] = {**stub.invocations[3], "status": "paused"}
        await wait_for(pilot, lambda: table.items[chosen]["status"] == "paused")
        assert table._order is order_before and table.cursor_row == 3
        # two new invocations arrive on top: the cursor stays on the same invocation
        stub.invocations[:0] = [
            _inv(12, "Greeter", "greet", None, "running"),
            _inv(11, "Greeter", "greet", None, "completed"),
        ]
        await wait_for(pilot, lambda: table.row_count == 12)
        assert table.selected["id"] == chosen and table.cursor_row == 5
        # the invocation goes (purged): the cursor stays at that place
        del stub.invocations[5]
        await wait_for(pilot, lambda: table.row_count == 11)
        assert table.cursor_row == 5


async def test_every_key_is_in_help_and_every_enabled_one_in_the_palette(stub: StubRuntime):
    app = stub.app()
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.screen.query_one(InvocationTable).row_count == 10)
        await pilot.press("down")  # a running invocation: cancel, kill, pause; not resume
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for b in [*InvocationsScreen.BINDINGS, *TuiApp.BINDINGS]:
            if b.action in ("command_palette", "quit"):
                continue
            enabled = b.action.startswith("act('") and b.action[5:-2] in ("cancel", "kill", "pause")
            if enabled or not b.action.startswith("act("):
                assert any(t.startswith(b.description) for t in titles), b.description
            else:
                assert not any(t.startswith(b.description) for t in titles), b.description
        assert "Kill: Kill the invocation" in titles and "Quit" in titles
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        table = app.screen._table()
        text = "\n".join(str(cell) for col in table.columns for cell in col._cells)
        for screen in (InvocationsScreen, InvocationScreen, AwakeablesScreen, StateScreen):
            for b in screen.BINDINGS:
                assert b.description in text, (screen.__name__, b.description)
        await pilot.press("escape")
        assert isinstance(app.screen, InvocationsScreen)
        # the palette runs what it lists: the awakeables view
        await app.run_action("command_palette")
        await pilot.press(*"Awakeables", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AwakeablesScreen), what="palette")


async def test_resolve_and_reject_send_what_the_dialogs_say(stub: StubRuntime):
    app = stub.app()
    async with app.run_test() as pilot:
        await pilot.press("a")
        table = app.screen.query_one(PendingTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("enter")  # the awakeable
        await wait_for(pilot, lambda: isinstance(app.screen, ResolveDialog))
        await pilot.press(*'{"ok": [1, 2]}', "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AwakeablesScreen))
        (post,) = stub.posts
        assert post.url.path.endswith("/resolve") and json.loads(post.content) == {"ok": [1, 2]}
        await pilot.press("down", "enter")  # the promise
        await wait_for(pilot, lambda: isinstance(app.screen, ResolveDialog))
        await pilot.press(*'"yes"', "enter")
        await wait_for(pilot, lambda: len(stub.posts) == 2)
        assert stub.posts[1].url.path == "/api/promises/resolve"
        assert json.loads(stub.posts[1].content) == {
            "service": "Signup",
            "key": "w1",
            "name": "confirmed",
            "value": "yes",
        }
        await wait_for(pilot, lambda: isinstance(app.screen, AwakeablesScreen))
        await pilot.press("up", "x")  # reject the awakeable
        await wait_for(pilot, lambda: isinstance(app.screen, RejectDialog))
        dialog = app.screen
        dialog.query_one("#code").value = "200"
        await pilot.press("enter", "enter")  # message, then code: refused
        await wait_for(pilot, lambda: dialog.query_one("#error").has_class("-shown"))
        assert len(stub.posts) == 2
        dialog.query_one("#code").value = "410"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: len(stub.posts) == 3)
        assert json.loads(stub.posts[2].content) == {"message": "rejected by hand", "code": 410}
        assert any(line.message.startswith("rejected awk_") for line in app.log_lines)


async def test_restart_from_the_selected_entry(stub: StubRuntime):
    app = stub.app()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: table.row_count == 10)
        table.move_cursor(row=list(table.items).index(inv_id(ORDER_O1)))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen))
        journal = app.screen.query_one(JournalTable)
        await wait_for(pilot, lambda: journal.row_count == 6)
        assert app.screen.check_action("restart", ()) is None  # not from entry 0
        await pilot.press("down", "down", "down", "t")
        await wait_for(pilot, lambda: isinstance(app.screen, RestartDialog))
        assert "entries 0 to 2 are kept" in screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen.invocation_id == inv_id(10), what="the new one")
        (post,) = stub.posts
        assert post.url.path == f"/api/invocations/{inv_id(ORDER_O1)}/restart"
        assert json.loads(post.content) == {"from": 3, "kill": True}


async def test_paused_invocation_error_and_resume(stub: StubRuntime):
    app = stub.app()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: table.row_count == 10)
        await pilot.press("down", "down")  # Flaky/boom, paused
        screen = app.screen
        assert screen.check_action("act", ("resume",)) is True
        assert screen.check_action("act", ("pause",)) is None
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen))
        await wait_for(pilot, lambda: app.screen.invocation is not None)
        text = screen_text(app)
        assert (
            "error: ValueError: boom on purpose · 3 failed attempts, last at app.py:61 (e) · "
            "1 log line (o)"
        ) in text
        await pilot.press("e")
        await wait_for(pilot, lambda: "Traceback" in screen_text(app), what="the stack")
        text = screen_text(app)
        assert "#1" in text and "#3" in text and "paused" in text and "last stack trace" in text
        await pilot.press("escape", "o")
        await wait_for(pilot, lambda: "charging the card" in screen_text(app), what="the logs")
        await pilot.press("escape", "r", "y")
        await wait_for(pilot, lambda: len(stub.posts) == 1)
        assert stub.posts[0].url.path == f"/api/invocations/{inv_id(8)}/resume"
        said = f"resume {inv_id(8)}: resumed: it is ready now"  # the answer's words
        await wait_for(pilot, lambda: any(line.message == said for line in app.log_lines))


async def test_app_load_error_from_a_runtime_without_events():
    stub = StubRuntime(events=False, services_error="ImportError: No module named 'stripe'")
    app = stub.app(interval=0.2)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.services_error is not None)
        await pilot.pause(0.5)  # a few polls: the error is logged once
        errors = [line.message for line in app.log_lines if line.level == "error"]
        assert errors == ["the app failed to load: ImportError: No module named 'stripe'"]
        assert app.outage is None and app.connected
        text = screen_text(app)
        assert "⚠ app does not load" in text
        assert "The app does not load: ImportError: No module named 'stripe'" in text
        assert any(r.url.path == "/health" for r in stub.requests)


async def test_app_load_error_shows_in_the_header_with_its_file_line_and_since():
    error = "syntax error in /p/app.py, line 3: invalid syntax\n    def ping(ctx"
    stub = StubRuntime(services_error=error)
    app = stub.app(interval=0.2)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.app_error is not None)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "⚠ app does not load" in text
        assert (
            "The app does not load since 09:26:00: syntax error in /p/app.py, line 3: "
            "invalid syntax" in " ".join(text.split())
        )
        assert "nothing is lost" in text
        stub.services_error = None  # fixed: the banner goes
        await app.load_services()
        await wait_for(pilot, lambda: app.app_error is None)
        await pilot.pause(0.1)
        assert "does not load" not in screen_text(app)


async def test_not_an_admin_api_is_said_once():
    import httpx

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>hello</html>")

    app = TuiApp("http://127.0.0.1:9", transport=httpx.MockTransport(html), interval=0.2)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: any(line.level == "error" for line in app.log_lines))
        await pilot.pause(0.6)
        errors = [line.message for line in app.log_lines if line.level == "error"]
        assert errors and len(errors) == len(set(errors))  # each said once, not every poll
        assert all("something else than JSON" in e for e in errors)


async def test_a_reload_whose_widgets_went_meanwhile_is_dropped(stub: StubRuntime):
    # the answer arrives after the screen's widgets were removed (popped, or the app
    # closing): before, the worker failed with NoMatches and took the app down with it
    app = stub.app()
    async with app.run_test() as pilot:
        screen = app.screen
        table = screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: table.row_count == 10)
        await table.remove()
        await screen._reload()  # raises NoMatches without the guard
        assert app.is_running
