"""The invocation screen of a copy pulled from a Restate cluster says where it came from."""

from __future__ import annotations

from durable.devtool.tui.screens import InvocationScreen
from durable.devtool.tui.widgets import InvocationTable
from tui_stub import StubRuntime, screen_text, wait_for

ORIGIN = {
    "cluster": "http://restate:9070",
    "remote_id": "inv_1eVo5PdoISlm6jjBIT15NnlJnbFO7Di1XC",
    "remote_status": "completed",
    "pulled_at": "2026-12-07T07:00:00Z",
    "state": None,
}


async def test_a_pulled_copy_shows_its_origin(stub: StubRuntime):
    stub.invocations[0] = {**stub.invocations[0], "origin": ORIGIN}  # Greeter/greet
    app = stub.app()
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: table.row_count == 10)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen))
        await wait_for(
            pilot,
            lambda: (
                "pulled from http://restate:9070: inv_1eVo5PdoISlm6jjBIT15NnlJnbFO7Di1XC, "
                "completed there" in screen_text(app)
            ),
            what="the origin line",
        )
