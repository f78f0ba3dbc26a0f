"""`durable tui --restate`: every screen under a pilot against a real restate-server,
through durable's admin API over the cluster (``cluster_app``, in-process)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from durable.devtool.commands.dashboard import cluster_transport
from durable.devtool.tui.app import TuiApp
from durable.devtool.tui.screens import AwakeablesScreen, InvocationScreen, LogScreen, StateScreen
from durable.devtool.tui.screens.dialogs import ConfirmDialog, ResolveDialog, RestartDialog
from durable.devtool.tui.widgets import (
    ConnectionBanner,
    InvocationTable,
    JournalTable,
    PendingTable,
    StatePanel,
)
from tui_stub import screen_text, wait_for

from tests.conftest import free_port
from tests.restate_server import AppProcess, RestateServer, hypercorn_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

APP = Path(__file__).resolve().parents[1] / "restate_apps" / "dashboard_app.py"
SIZE = (120, 32)


class Cluster:
    def __init__(self, server: RestateServer, app: AppProcess) -> None:
        self.server = server
        self.app = app
        self.url = server.admin_url

    def tui(self) -> TuiApp:
        return TuiApp(
            self.url, interval=0.3, transport=cluster_transport(self.url), cluster=self.url
        )

    async def send(self, path: str, body: Any) -> str:
        async with httpx.AsyncClient() as c:
            r = await c.post(f"{self.server.ingress_url}/{path}/send", json=body, timeout=30)
        assert r.status_code in (200, 202), r.text
        return r.json()["invocationId"]

    async def row(self, inv_id: str) -> dict[str, Any]:
        rows = await asyncio.to_thread(
            self.server.query, f"SELECT * FROM sys_invocation WHERE id = '{inv_id}'"
        )
        return rows[0] if rows else {}

    async def wait(self, inv_id: str, test: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            row = await self.row(inv_id)
            if row and test(row):
                return row
            await asyncio.sleep(0.1)
        raise AssertionError(f"{inv_id} never got there: {row}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    app_dir = tmp_path_factory.mktemp("tui-cluster-app")
    shutil.copy(APP, app_dir / "app.py")
    server = RestateServer(tmp_path_factory.mktemp("restate"))
    app = hypercorn_app(app_dir)
    try:
        server.start()
        app.start()
        server.register(app.url)
        yield Cluster(server, app)
    finally:
        app.stop()
        server.stop()


def rows(app: TuiApp) -> dict[str, dict]:
    return app.screen.query_one(InvocationTable).items


def plain(widget) -> str:
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)


async def test_the_list_and_one_journal_name_the_cluster(cluster: Cluster) -> None:
    inv = await cluster.send("Pantry/tui-1/stock", "jam")
    await cluster.wait(inv, lambda r: r["status"] == "completed")
    app = cluster.tui()
    async with app.run_test(size=SIZE) as pilot:
        host = cluster.url.split("://")[1]
        await wait_for(pilot, lambda: inv in rows(app), what=f"{inv} in the list")
        assert f"Restate cluster {host}" in screen_text(app)
        assert rows(app)[inv]["status"] == "completed"
        table = app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: table.selected is not None)
        while table.selected["id"] != inv:
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen), what="opened")
        journal = app.screen.query_one(JournalTable)
        await wait_for(pilot, lambda: journal.row_count >= 4, what="the journal")
        kinds = [e["kind"] for e in journal.entries]
        assert kinds[0] == "input" and "get_state" in kinds and "set_state" in kinds, kinds
        assert f"Restate cluster {host}" in screen_text(app)
        await pilot.press("down")
        panel = app.screen.query_one(StatePanel)
        await wait_for(pilot, lambda: "not available on a Restate cluster" in plain(panel))


async def test_state_screen_shows_a_key(cluster: Cluster) -> None:
    inv = await cluster.send("Pantry/tui-state/stock", "rice")
    await cluster.wait(inv, lambda r: r["status"] == "completed")
    app = cluster.tui()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, StateScreen), what="state view")
        screen = app.screen
        await wait_for(pilot, lambda: "Pantry" in screen.service_nodes, what="Pantry")
        tree = screen.query_one("#keys")
        tree.cursor_line = screen.service_nodes["Pantry"].line
        await pilot.press("enter")  # expand: its keys
        await wait_for(pilot, lambda: "tui-state" in screen.key_nodes["Pantry"], what="keys")
        tree.cursor_line = screen.key_nodes["Pantry"]["tui-state"].line
        panel = screen.query_one(StatePanel)
        await wait_for(pilot, lambda: '"rice"' in plain(panel), what="the state")
        assert "count = 1" in plain(panel)
        assert "Restate cluster" in screen_text(app)


async def test_resolve_an_awakeable_and_a_refused_promise(cluster: Cluster) -> None:
    inv = await cluster.send("Kitchen/wait", "t1")
    await cluster.wait(inv, lambda r: r["status"] == "suspended")
    wf = await cluster.send("Signup/tui-wf/run", "a@b.c")
    await cluster.wait(wf, lambda r: r["status"] == "suspended")
    app = cluster.tui()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AwakeablesScreen))
        table = app.screen.query_one(PendingTable)

        def select(test: Any) -> bool:
            if table.selected is None:
                return False
            if test(table.selected):
                return True
            table.action_cursor_down()
            return False

        await wait_for(pilot, lambda: select(lambda s: s.get("invocation_id") == inv), timeout=20)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResolveDialog))
        await pilot.press(*'"from the tui"', "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AwakeablesScreen), what="closed")
        done = await cluster.wait(inv, lambda r: r["status"] == "completed")
        assert done["completion_result"] == "success"

        # Restate completes a promise only from its workflow: the dialog says so
        await wait_for(pilot, lambda: select(lambda s: s.get("name") == "code"), timeout=20)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResolveDialog))
        dialog = app.screen
        await pilot.press(*'"123"', "enter")
        await wait_for(pilot, lambda: dialog.query_one("#error").has_class("-shown"))
        assert "not available on a Restate cluster" in plain(dialog.query_one("#error"))
        assert (await cluster.row(wf))["status"] == "suspended"
        await pilot.press("escape")


async def test_kill_from_the_list_reaches_restate(cluster: Cluster) -> None:
    inv = await cluster.send("Kitchen/stuck", "tui-kill")
    await cluster.wait(inv, lambda r: r["status"] in ("backing-off", "running"))
    app = cluster.tui()
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: inv in rows(app), what=f"{inv} in the list")
        while table.selected["id"] != inv:
            await pilot.press("down")
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        row = await cluster.wait(inv, lambda r: r["status"] == "completed")
        assert row["completion_result"] == "failure"
        await wait_for(pilot, lambda: rows(app)[inv]["status"] == "killed", what="killed row")
        assert any(f"kill {inv}" in line.message for line in app.log_lines)


async def test_restart_from_an_entry_on_the_cluster(cluster: Cluster) -> None:
    inv = await cluster.send("Kitchen/steps", 20)
    await cluster.wait(inv, lambda r: r["status"] == "completed")
    app = cluster.tui()
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(InvocationTable)
        await wait_for(pilot, lambda: inv in rows(app), what=f"{inv} in the list")
        while table.selected["id"] != inv:
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen), what="opened")
        journal = app.screen.query_one(JournalTable)
        await wait_for(pilot, lambda: journal.row_count >= 4, what="the journal")
        await pilot.press("down", "down")  # entry 2: the second run
        await wait_for(pilot, lambda: journal.selected["index"] == 2)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, RestartDialog), what="the dialog")
        await pilot.press("y")
        said = f"restarted {inv} from entry 2 as "
        line = await wait_for(
            pilot,
            lambda: next((x.message for x in app.log_lines if x.message.startswith(said)), None),
            timeout=20,
            what=said,
        )
        new_id = line[len(said) :]
        row = await cluster.wait(new_id, lambda r: r["status"] == "completed")
        assert row["target_handler_name"] == "steps"


async def test_the_log_says_what_a_cluster_does_not_give(cluster: Cluster) -> None:
    app = cluster.tui()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
        await wait_for(pilot, lambda: "has no event log" in screen_text(app), what="the note")
        assert "watching the Restate cluster at " + cluster.url in screen_text(app)


async def test_banner_while_the_cluster_is_down(cluster: Cluster) -> None:
    first = await cluster.send("Kitchen/steps", 1)
    await cluster.wait(first, lambda r: r["status"] == "completed")
    app = cluster.tui()
    async with app.run_test(size=SIZE) as pilot:
        banner = app.screen.query_one(ConnectionBanner)
        await wait_for(pilot, lambda: first in rows(app))
        assert not banner.has_class("-visible")
        await asyncio.to_thread(cluster.server.stop)
        try:
            await wait_for(pilot, lambda: banner.has_class("-visible"), timeout=20, what="banner")
            said = f"The Restate cluster at {cluster.url} does not answer"
            # the class comes first; the words on the next refresh
            await wait_for(pilot, lambda: said in " ".join(screen_text(app).split()), what=said)
        finally:
            await asyncio.to_thread(cluster.server.start)
        await wait_for(pilot, lambda: not banner.has_class("-visible"), timeout=30)
        assert any("answers again" in line.message for line in app.log_lines)


def test_an_unreachable_cluster_exits_1(tmp_path: Path) -> None:
    port = free_port()
    r = subprocess.run(
        [sys.executable, "-m", "durable.devtool.cli", "tui", "--restate"]
        + [f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"cannot reach the Restate cluster at http://127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr
    env = {**os.environ, "DURABLE_RESTATE_URL": f"http://127.0.0.1:{port}"}
    r = subprocess.run(
        [sys.executable, "-m", "durable.devtool.cli", "tui"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 1 and "cannot reach the Restate cluster" in r.stderr, r.stderr


async def test_timeline_call_tree_and_logs_of_a_cluster_invocation(
    cluster: Cluster,
) -> None:
    from durable.devtool.tui.screens.calltree import CallTreeScreen
    from durable.devtool.tui.screens.dialogs import TextDialog
    from durable.devtool.tui.widgets import TimelineTable

    inv = await cluster.send("Kitchen/tour", 3)
    await cluster.wait(inv, lambda r: r["status"] == "completed")
    children = await asyncio.to_thread(  # Helper/echo: called once, sent to once
        cluster.server.query, f"SELECT id FROM sys_invocation WHERE invoked_by_id = '{inv}'"
    )
    callees = {r["id"] for r in children}
    assert len(callees) == 2, children
    app = cluster.tui()
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(InvocationScreen(inv))
        await wait_for(pilot, lambda: app.screen.query_one(JournalTable).row_count >= 6)
        await pilot.press("w")  # the journal as bars, on the cluster's times
        timeline = app.screen.query_one(TimelineTable)
        await wait_for(pilot, lambda: timeline.row_count >= 6 and timeline.display)
        kinds = {b.kind for b in timeline.bars}
        assert {"run", "sleep", "call", "awakeable"} <= kinds, kinds
        assert {b.link for b in timeline.bars if b.kind == "call"} <= callees
        await pilot.press("T")  # the whole call tree, from Restate's invoked_by_id
        await wait_for(pilot, lambda: isinstance(app.screen, CallTreeScreen), what="the tree")
        tree = app.screen.query_one(TimelineTable)
        await wait_for(pilot, lambda: tree.row_count >= 2, what="root and callee")
        links = [b.link for b in tree.bars]
        assert links[0] == inv and callees <= set(links), links
        assert f"from {inv}" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen))
        await pilot.press("o")  # logs: Restate keeps none, and the dialog says so
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog), what="logs dialog")
        assert "Restate keeps no handler logs" in screen_text(app)
