"""`durable dashboard --url`: the pages served alone, over a runtime's admin API (the API
source), in a real browser. The page tests of test_pages that read nothing but pages run
here again against it; the runtime's own dashboard is not used."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_process import DashboardProcess as Dashboard
from dashboard_process import free_port as _free_port
from playwright.sync_api import Page, expect
from test_pages import (  # noqa: F401  (collected here again, against this module's runtime)
    test_a_cancel_says_cancelled_not_the_status_before,
    test_bulk_action_over_the_filter,
    test_detail_and_time_travel,
    test_invoke_a_handler_from_its_form,
    test_keyset_pages,
    test_kill_from_the_detail_page,
    test_list_updates_live_and_filters,
    test_resolve_awakeable_from_its_form,
    test_sql_page,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


class Remote:
    """The suite's runtime, with the pages at the dashboard's address: every helper
    (send, call, invocation, wait_status) still talks to the runtime itself."""

    def __init__(self, runtime: Any, dashboard: Dashboard) -> None:
        self._runtime = runtime
        self.admin_url = dashboard.url
        self.api_url = runtime.admin_url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)


@pytest.fixture(scope="module")
def runtime(runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    """The suite's runtime, its pages served by a `durable dashboard --url` over it."""
    d = Dashboard(["--url", runtime.admin_url], tmp_path_factory.mktemp("remote-dashboard"))
    try:
        yield Remote(runtime, d)
    finally:
        d.stop()


def test_resolve_a_workflow_promise(page: Page, runtime: Remote) -> None:
    """test_pages' own uses a workflow id that would already be done here."""
    inv_id = runtime.send("/Signup/wf-remote/run", "r@b.c")
    runtime.wait_status(inv_id, "suspended", "running")
    page.goto(runtime.admin_url + "/awakeables")
    row = page.locator("tr[data-promise]", has=page.locator(f'a[href="/invocations/{inv_id}"]'))
    row.locator("summary", has_text="Resolve").click()
    editor = row.locator('textarea[name="value"]')
    assert json.loads(editor.input_value()) == 0  # type_hint=int, through the API's schema
    editor.fill("7")
    row.locator('button[data-action="resolve"]').click()
    expect(page.locator("#pending .flash.ok")).to_contain_text("resolved")
    assert runtime.wait_status(inv_id, "completed")["output_value"] == "r@b.c: 7"


def test_the_header_names_the_runtime_and_its_app(page: Page, runtime: Remote) -> None:
    page.goto(runtime.admin_url + "/invocations")
    header = page.locator("header .runtime")
    expect(header).to_contain_text(f"runtime {runtime.api_url}")
    expect(header).to_contain_text("app.py")


def test_replay_restart_and_state_edits_go_to_the_runtime(page: Page, runtime: Remote) -> None:
    assert runtime.call("/Steps/three", 5).json() == 112
    found = httpx.get(f"{runtime.api_url}/api/invocations", params={"handler": "three"}).json()
    inv_id = found["invocations"][0]["id"]
    page.goto(runtime.admin_url + f"/invocations/{inv_id}")
    page.locator('button[data-action="replay"]').click()
    expect(page.locator("#inv-live .flash.ok")).to_contain_text("Replay matches")
    entry = page.locator('tr[data-entry="2"]')
    entry.locator("summary", has_text="Restart here").click()
    entry.locator('button[data-action="restart"]').click()
    expect(page).to_have_url(re.compile(rf"restarted_from={inv_id}"))
    new_id = page.url.split("/invocations/")[1].split("?")[0]
    assert runtime.wait_status(new_id, "completed")["restarted_from"] == inv_id

    runtime.call("/Cart/remote-edit/put", {"n": 1})
    page.goto(runtime.admin_url + "/state?service=Cart&key=remote-edit")
    entry = page.locator('.state-entry[data-name="value"]')
    entry.locator("summary", has_text="Edit").click()
    entry.locator("textarea").fill('{"n": 7}')
    entry.locator('button[data-action="save"]').click()
    expect(page.locator("#state-browser .flash.ok")).to_contain_text("Set 'value'")
    state = httpx.get(f"{runtime.api_url}/api/state/Cart/remote-edit").json()["state"]
    assert state == {"value": {"n": 7}}


def test_a_runtime_that_goes_away_shows_a_banner(page: Page, runtime: Remote, tmp_path) -> None:
    """A second dashboard over an address where nothing answers once it started."""
    import socket
    import threading

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    port = _free_port()

    async def health(_r: Any) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/health", health)]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    d = Dashboard(["--url", f"http://127.0.0.1:{port}"], tmp_path)
    try:
        server.should_exit = True
        thread.join(timeout=10)
        with socket.socket() as s:  # nothing listens there now
            assert s.connect_ex(("127.0.0.1", port)) != 0
        page.goto(d.url + "/services")
        expect(page.locator("#outage-banner")).to_contain_text(
            "The runtime does not answer", timeout=10_000
        )
    finally:
        d.stop()


def test_an_unreachable_runtime_exits_1_with_a_message(tmp_path: Path) -> None:
    port = _free_port()
    r = subprocess.run(
        [sys.executable, "-m", "durable.devtool.cli", "dashboard", "--url"]
        + [f"http://127.0.0.1:{port}", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"cannot reach a durable runtime at http://127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "durable.devtool.cli", "dashboard"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={k: v for k, v in __import__("os").environ.items() if "DURABLE_" not in k},
    )
    assert r.returncode == 1 and "--restate http://HOST:9070" in r.stderr
