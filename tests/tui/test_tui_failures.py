"""The TUI under a pilot against a real `durable dev`: the `failed` status key, an
invocation's failed attempts and logs, and handlers' prints in the log panel."""

from __future__ import annotations

import httpx
import pytest
from durable.devtool.tui.app import TuiApp
from durable.devtool.tui.screens import InvocationScreen
from durable.devtool.tui.widgets import InvocationTable
from tui_stub import screen_text, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

APP = """
import durable
from durable import Service, Context, TerminalError

log = durable.getLogger("shop")
shop = Service("Shop")

@shop.handler()
async def buy(ctx: Context, item: str) -> str:
    print(f"looking for {item}")
    log.info("no %s left", item)
    raise TerminalError(f"out of {item}", 409)  # LINE

@shop.handler()
async def ok(ctx: Context) -> str:
    return "fine"
"""
LINE = next(n for n, line in enumerate(APP.splitlines(), 1) if "# LINE" in line)


async def test_failed_filter_attempts_and_logs(write_app, dev_server):
    srv = dev_server(write_app(APP), extra=["--no-reload"])
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
        assert (await c.post("/Shop/ok")).status_code == 200
        assert (await c.post("/Shop/buy", json="tomatoes")).status_code == 409
    app = TuiApp(srv.admin_url, interval=0.3)
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="both invocations")

        # the log follows /api/events: the handler's print and log, prefixed
        def log() -> str:
            return "\n".join(f"{g.level}: {g.message}" for g in app.log_lines)

        await wait_for(pilot, lambda: "looking for tomatoes" in log(), what="the print")
        assert "log: [Shop/buy inv_" in log() and "] shop: no tomatoes left" in log()
        await wait_for(pilot, lambda: f"failed at app.py:{LINE}" in log(), what="the failure")
        await pilot.press("l")  # the full-screen log shows them
        await wait_for(pilot, lambda: "looking for tomatoes" in screen_text(app))
        assert "what handlers printed or logged" in screen_text(app)
        await pilot.press("i")
        # key 9: failed only
        await pilot.press("9")
        await wait_for(pilot, lambda: table.row_count == 1, what="the failed one only")
        [item] = table.items.values()
        assert (item["handler"], item["status"]) == ("buy", "failed")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen))
        await wait_for(pilot, lambda: app.screen.invocation is not None)
        await wait_for(pilot, lambda: "failed attempt" in screen_text(app), what="summary")
        text = screen_text(app)
        assert "failed 409" in text
        assert f"1 failed attempt, last at app.py:{LINE} (e) · 2 log lines (o)" in text
        await pilot.press("e")
        await wait_for(pilot, lambda: "last stack trace" in screen_text(app), what="errors")
        text = screen_text(app)
        assert f"app.py:{LINE}" in text and "TerminalError(409): out of tomatoes" in text
        assert 'raise TerminalError(f"out of {item}", 409)' in text
        await pilot.press("escape", "o")
        await wait_for(pilot, lambda: "Logs of" in screen_text(app), what="logs")
        text = screen_text(app)
        assert "looking for tomatoes" in text and "INFO  shop: no tomatoes left" in text
