"""The look of the main screens at 80x24 and 120x40, over a stub admin API with fixed
data and a fixed clock (so the pictures do not change from run to run).

Update the pictures after a deliberate change with ``pytest tests/tui --snapshot-update``
and look at them (``snapshot_report.html``) before committing.
"""

from __future__ import annotations

import pytest
from durable.devtool.tui.screens import (
    AwakeablesScreen,
    HelpScreen,
    InvocationScreen,
    LogScreen,
    StateScreen,
)
from durable.devtool.tui.screens.calltree import CallTreeScreen
from durable.devtool.tui.screens.dialogs import ResolveDialog
from durable.devtool.tui.widgets import InvocationTable, JournalTable, PendingTable
from tui_stub import ORDER_O1, StubRuntime, inv_id, wait_for

pytestmark = pytest.mark.timeout(60)

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


async def _list_loaded(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.screen.query_one(InvocationTable).row_count == 10)
    await wait_for(pilot, lambda: len(app.log_lines) >= 8, what="the log")


@SIZES
def test_invocations(snap_compare, stub: StubRuntime, size):
    assert snap_compare(stub.app(), terminal_size=size, run_before=_list_loaded)


@SIZES
def test_invocations_filtered(snap_compare, stub: StubRuntime, size):
    async def run_before(pilot) -> None:
        await _list_loaded(pilot)
        await pilot.press("5", "7", "slash", "O", "r", "d")
        table = pilot.app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="one suspended Order")

    assert snap_compare(stub.app(), terminal_size=size, run_before=run_before)


@SIZES
def test_invocation_journal_and_state(snap_compare, stub: StubRuntime, size):
    async def run_before(pilot) -> None:
        app = pilot.app
        await _list_loaded(pilot)
        table = app.screen.query_one(InvocationTable)
        table.move_cursor(row=list(table.items).index(inv_id(ORDER_O1)))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen))
        await wait_for(pilot, lambda: app.screen.query_one(JournalTable).row_count == 6)
        await pilot.press("down", "down", "down")  # the run entry: a JSON result

    assert snap_compare(stub.app(), terminal_size=size, run_before=run_before)


@SIZES
def test_awakeables(snap_compare, stub: StubRuntime, size):
    async def run_before(pilot) -> None:
        app = pilot.app
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AwakeablesScreen))
        await wait_for(pilot, lambda: app.screen.query_one(PendingTable).row_count == 2)

    assert snap_compare(stub.app(), terminal_size=size, run_before=run_before)


@SIZES
def test_resolve_dialog_refuses_invalid_json(snap_compare, stub: StubRuntime, size):
    async def run_before(pilot) -> None:
        app = pilot.app
        await pilot.press("a")
        await wait_for(pilot, lambda: app.screen.query_one(PendingTable).row_count == 2)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResolveDialog))
        await pilot.press(*'{"ok": tru')
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query_one("#error").has_class("-shown"))

    assert snap_compare(stub.app(), terminal_size=size, run_before=run_before)
    assert stub.posts == []


@SIZES
def test_state_browser(snap_compare, stub: StubRuntime, size):
    async def run_before(pilot) -> None:
        app = pilot.app
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, StateScreen))
        await wait_for(pilot, lambda: "Order" in app.screen.service_nodes)
        await pilot.press("enter")  # expand Order
        await wait_for(pilot, lambda: len(app.screen.key_nodes["Order"]) == 2)
        await pilot.press("down", "down")  # o2
        await wait_for(pilot, lambda: "o2" in str(app.screen.query_one("#state-box").border_title))

    assert snap_compare(stub.app(), terminal_size=size, run_before=run_before)


@SIZES
def test_log(snap_compare, stub: StubRuntime, size):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: len(app.log_lines) >= 8, what="the log")
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))

    assert snap_compare(stub.app(), terminal_size=size, run_before=run_before)


@SIZES
def test_help(snap_compare, stub: StubRuntime, size):
    async def run_before(pilot) -> None:
        await _list_loaded(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    assert snap_compare(stub.app(), terminal_size=size, run_before=run_before)


@SIZES
def test_runtime_unreachable_banner(snap_compare, size):
    stub = StubRuntime(down=True)

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: pilot.app.outage is not None, what="the outage")

    assert snap_compare(stub.app(), terminal_size=size, run_before=run_before)


@SIZES
def test_call_tree(snap_compare, stub: StubRuntime, size):
    async def run_before(pilot) -> None:
        app = pilot.app
        await _list_loaded(pilot)
        app.push_screen(CallTreeScreen(inv_id(22)))
        await wait_for(pilot, lambda: isinstance(app.screen, CallTreeScreen))
        await wait_for(pilot, lambda: app.screen.query_one("#tree").row_count == 5)
        assert app.screen.query_one("#tree").cursor_row == 2  # on the one it was opened for

    assert snap_compare(stub.app(), terminal_size=size, run_before=run_before)
