"""`durable dashboard --restate`: every page against a real restate-server, in a real
browser. The app is tests/restate_apps/dashboard_app.py (the real restate-sdk under
hypercorn); effects are checked in Restate's own SQL and ingress."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_process import DashboardProcess, free_port
from playwright.sync_api import Page, expect

from tests.restate_server import AppProcess, RestateServer, hypercorn_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CLUSTER_APP = Path(__file__).resolve().parents[1] / "restate_apps" / "dashboard_app.py"


class Cluster:
    """A restate-server, the app registered with it, and `durable dashboard` over it."""

    def __init__(self, server: RestateServer, app: AppProcess, dash: DashboardProcess) -> None:
        self.server = server
        self.app = app
        self.dash = dash
        self.url = dash.url

    def call(self, path: str, body: Any = None) -> httpx.Response:
        return httpx.post(f"{self.server.ingress_url}/{path}", json=body, timeout=30)

    def send(self, path: str, body: Any = None) -> str:
        r = self.call(f"{path}/send", body)
        assert r.status_code in (200, 202), r.text
        return r.json()["invocationId"]

    def row(self, inv_id: str) -> dict[str, Any]:
        rows = self.server.query(f"SELECT * FROM sys_invocation WHERE id = '{inv_id}'")
        assert rows, f"no invocation {inv_id} on the cluster"
        return rows[0]

    def wait(self, inv_id: str, test: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            rows = self.server.query(f"SELECT * FROM sys_invocation WHERE id = '{inv_id}'")
            row = rows[0] if rows else {}
            if row and test(row):
                return row
            time.sleep(0.1)
        raise AssertionError(f"{inv_id} never got there: {row}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    app_dir = tmp_path_factory.mktemp("cluster-app")
    shutil.copy(CLUSTER_APP, app_dir / "app.py")
    server = RestateServer(tmp_path_factory.mktemp("restate"))
    app = hypercorn_app(app_dir)
    dash = None
    t0 = time.monotonic()
    try:
        server.start()
        app.start()
        server.register(app.url)
        dash = DashboardProcess(["--restate", server.admin_url], app_dir)
        print(f"cluster and dashboard up in {time.monotonic() - t0:.1f} s")
        yield Cluster(server, app, dash)
    finally:
        if dash is not None:
            dash.stop()
        app.stop()
        server.stop()


def header_names_the_cluster(page: Page, cluster: Cluster) -> None:
    expect(page.locator("#cluster-name")).to_contain_text(
        f"Restate cluster {cluster.server.admin_url}"
    )


def test_every_page_names_the_cluster(page: Page, cluster: Cluster) -> None:
    inv_id = cluster.send("Kitchen/steps", 1)
    cluster.wait(inv_id, lambda r: r["status"] == "completed")
    for path in (
        "/invocations",
        "/awakeables",
        "/state",
        "/services",
        "/sql",
        f"/invocations/{inv_id}",
        f"/invocations/{inv_id}/tree",
    ):
        page.goto(cluster.url + path)
        header_names_the_cluster(page, cluster)
        expect(page.locator("#cluster-name")).to_contain_text("v1.7")


def test_invocations_with_filters(page: Page, cluster: Cluster) -> None:
    steps = cluster.send("Kitchen/steps", 2)
    cluster.wait(steps, lambda r: r["status"] == "completed")
    assert cluster.call("Pantry/shelf-1/stock", "jam").status_code == 200
    page.goto(cluster.url + "/invocations")
    expect(page.locator(f'tr[data-id="{steps}"] .chip')).to_have_text("completed")
    expect(page.locator("#counts")).to_contain_text("completed")
    # Restate's ids (38 characters) fit their column, whole, with no overlap
    cut = page.eval_on_selector_all(
        "#inv-table a.id",
        "els => els.filter(e => e.parentElement.scrollWidth > e.parentElement.clientWidth).length",
    )
    assert cut == 0
    expect(page.locator(f'tr[data-id="{steps}"] .num')).to_have_text("1")  # it ran once

    page.goto(cluster.url + "/invocations?service=Pantry")
    targets = page.locator("#inv-table tbody tr .target .svc")
    expect(targets.first).to_have_text("Pantry")
    assert set(targets.all_inner_texts()) == {"Pantry"}
    page.goto(cluster.url + "/invocations?service=Kitchen&handler=steps&status=completed")
    expect(page.locator(f'tr[data-id="{steps}"]')).to_be_visible()
    page.goto(cluster.url + "/invocations?service=Kitchen&status=killed&handler=steps")
    expect(page.locator("#inv-table td.empty")).to_contain_text("No invocation matches")


def test_one_invocation_journal_and_what_it_cannot_do_here(page: Page, cluster: Cluster) -> None:
    assert cluster.call("Kitchen/tour", 4).status_code == 200
    inv_id = cluster.server.query(
        "SELECT id FROM sys_invocation WHERE target_handler_name = 'tour' "
        "ORDER BY created_at DESC LIMIT 1"
    )[0]["id"]
    page.goto(cluster.url + f"/invocations/{inv_id}")
    expect(page.locator(".head h1")).to_have_text(inv_id)
    expect(page.locator(".head .chip").first).to_have_text("completed")
    kinds = page.locator("table.timeline tbody tr[data-entry] .kind").all_inner_texts()
    assert kinds[0] == "input" and kinds[-1] == "output"
    for kind in ("run", "sleep", "call", "one_way_call", "awakeable"):
        assert kind in kinds, kinds
    expect(page.locator(".card.output")).to_contain_text('"doubled": 8')
    # replay runs local code: not here, and the page says why instead of a button
    expect(page.locator('button[data-action="replay"]')).to_be_disabled()
    expect(page.locator('[data-unavailable="replay"]')).to_contain_text("durable pull")

    # an object's invocation: no time travel on Restate, and why
    assert cluster.call("Pantry/shelf-2/stock", "tea").status_code == 200
    page.goto(cluster.url + "/invocations?service=Pantry&key=shelf-2")
    page.locator("#inv-table a.id").first.click()
    expect(page.locator('[data-unavailable="timetravel"]')).to_contain_text("history")
    expect(page.locator("#tt-slider")).to_have_count(0)
    r = page.request.get(page.url.split("#")[0] + "/state?entry=1")
    assert r.status == 501 and "not available on a Restate cluster" in r.text()


def test_state_of_a_key_and_an_edit_restate_applies(page: Page, cluster: Cluster) -> None:
    assert cluster.call("Pantry/shelf-3/stock", "rice").status_code == 200
    page.goto(cluster.url + "/state")
    page.locator("a", has_text="Pantry").first.click()
    page.locator("ul.keys a", has_text="shelf-3").click()
    expect(page.locator('.state-entry[data-name="last"] pre.json')).to_contain_text('"rice"')
    expect(page.locator('.state-entry[data-name="count"] pre.json')).to_contain_text("1")
    entry = page.locator('.state-entry[data-name="last"]')
    entry.locator("summary", has_text="Edit").click()
    entry.locator("textarea").fill('"beans"')
    entry.locator('button[data-action="save"]').click()
    expect(page.locator("#state-browser .flash.ok")).to_contain_text("Set 'last'")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # Restate applies a state change asynchronously
        rows = cluster.server.query(
            "SELECT value_utf8 FROM state WHERE service_name = 'Pantry' "
            "AND service_key = 'shelf-3' AND key = 'last'"
        )
        if rows and json.loads(rows[0]["value_utf8"]) == "beans":
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"Restate's state never showed the edit: {rows}")
    assert cluster.call("Pantry/shelf-3/look").json() == "beans"


def test_kill_from_the_page_reaches_restate(page: Page, cluster: Cluster) -> None:
    inv_id = cluster.send("Kitchen/stuck", "k1")
    cluster.wait(inv_id, lambda r: r["status"] in ("backing-off", "running"))
    page.goto(cluster.url + f"/invocations/{inv_id}")
    page.locator("summary", has_text="Kill").click()
    page.locator('button[data-action="kill"]').click()
    expect(page.locator("#inv-live .flash.ok")).to_be_visible()
    expect(page.locator(".head .chip").first).to_have_text("killed", timeout=15_000)
    row = cluster.wait(inv_id, lambda r: r["status"] == "completed")
    assert row["completion_result"] == "failure"


def test_pause_resume_cancel_and_purge_from_the_page(page: Page, cluster: Cluster) -> None:
    inv_id = cluster.send("Kitchen/stuck", "p1")
    cluster.wait(inv_id, lambda r: r["status"] in ("backing-off", "running"))
    page.goto(cluster.url + f"/invocations/{inv_id}")
    page.locator('button[data-action="pause"]').click()
    expect(page.locator(".head .chip").first).to_have_text("paused", timeout=15_000)
    cluster.wait(inv_id, lambda r: r["status"] == "paused")
    page.locator('button[data-action="resume"]').click()
    expect(page.locator("#inv-live .flash.ok")).to_contain_text("esume")
    cluster.wait(inv_id, lambda r: r["status"] != "paused")
    page.locator("summary", has_text="Cancel").click()
    page.locator('button[data-action="cancel"]').click()
    expect(page.locator("#inv-live .flash.ok")).to_be_visible()
    row = cluster.wait(inv_id, lambda r: r["status"] == "completed")
    assert row["completion_result"] == "failure"
    # finished: purge is offered, and Restate forgets it
    page.goto(cluster.url + f"/invocations/{inv_id}")
    expect(page.locator(".head .chip").first).to_have_text("cancelled")
    page.locator("summary", has_text="Purge").click()
    page.locator('button[data-action="purge"]').click()
    expect(page).to_have_url(re.compile(r"/invocations(\?.*)?$"))
    deadline = time.monotonic() + 15
    while cluster.server.query(f"SELECT id FROM sys_invocation WHERE id = '{inv_id}'"):
        assert time.monotonic() < deadline, "Restate still has the purged invocation"
        time.sleep(0.2)


def test_restart_from_an_entry_on_restate(page: Page, cluster: Cluster) -> None:
    inv_id = cluster.send("Kitchen/steps", 10)
    cluster.wait(inv_id, lambda r: r["status"] == "completed")
    page.goto(cluster.url + f"/invocations/{inv_id}")
    entry = page.locator('tr[data-entry="2"]')
    entry.locator("summary", has_text="Restart here").click()
    entry.locator('button[data-action="restart"]').click()
    expect(page).to_have_url(re.compile(rf"restarted_from={inv_id}"))
    new_id = page.url.split("/invocations/")[1].split("?")[0]
    assert new_id != inv_id
    row = cluster.wait(new_id, lambda r: r["status"] == "completed")
    assert row["target_handler_name"] == "steps"


def test_an_awakeable_resolved_from_the_page_completes_the_invocation(
    page: Page, cluster: Cluster
) -> None:
    inv_id = cluster.send("Kitchen/wait", "w1")
    cluster.wait(inv_id, lambda r: r["status"] == "suspended")  # after 1 s idle
    page.goto(cluster.url + "/awakeables")
    header_names_the_cluster(page, cluster)
    row = page.locator("tr[data-awakeable]", has=page.locator(f'a[href="/invocations/{inv_id}"]'))
    expect(row).to_be_visible(timeout=15_000)
    row.locator("summary", has_text="Resolve").click()
    row.locator('textarea[name="value"]').fill('{"from": "the page"}')
    row.locator('button[data-action="resolve"]').click()
    expect(page.locator("#pending .flash.ok")).to_contain_text("resolved")
    done = cluster.wait(inv_id, lambda r: r["status"] == "completed")
    assert done["completion_result"] == "success"
    out = httpx.get(
        f"{cluster.server.ingress_url}/restate/invocation/{inv_id}/output", timeout=10
    ).json()
    assert out == {"first": "w1-1", "value": {"from": "the page"}}


def test_workflow_promises_are_listed_and_shown_unavailable(page: Page, cluster: Cluster) -> None:
    inv_id = cluster.send("Signup/su-1/run", "a@b.c")
    cluster.wait(inv_id, lambda r: r["status"] == "suspended")
    page.goto(cluster.url + "/awakeables")
    row = page.locator('tr[data-promise="code"]')
    expect(row).to_be_visible(timeout=15_000)
    expect(row.locator("button[disabled]")).to_have_attribute("title", re.compile("Restate"))
    expect(page.locator('[data-unavailable="promises"]')).to_contain_text("shared handlers")
    # a POST that still arrives (same origin) gets the reason, as a 501
    r = page.request.post(
        cluster.url + "/promises/resolve",
        form={"service": "Signup", "key": "su-1", "name": "code", "value": '"1"'},
        headers={"Origin": cluster.url},
    )
    assert r.status == 501 and "not available on a Restate cluster" in r.text()
    assert cluster.row(inv_id)["status"] == "suspended"


def test_services_and_invoke_through_the_cluster_ingress(page: Page, cluster: Cluster) -> None:
    page.goto(cluster.url + "/services")
    expect(page.locator(".runtime-card")).to_contain_text(cluster.server.admin_url)
    for name in ("Kitchen", "Pantry", "Signup", "Helper"):
        expect(page.locator(f'section[data-service="{name}"]')).to_be_visible()
    row = page.locator('section[data-service="Helper"] tr[data-handler="echo"]')
    row.locator("summary", has_text="Invoke").click()
    form = row.locator("form.invoke-form")
    form.locator('textarea[name="value"]').fill('{"hello": "cluster"}')
    form.locator('button[data-action="invoke"]').click()
    result = row.locator(".invoke-result")
    expect(result).to_contain_text("completed", timeout=15_000)
    expect(result.locator("pre.json")).to_contain_text('"hello": "cluster"')
    inv_id = result.locator("a.id").inner_text()
    assert cluster.row(inv_id)["target_handler_name"] == "echo"


def test_sql_page_queries_restate(page: Page, cluster: Cluster) -> None:
    page.goto(cluster.url + "/sql")
    expect(page.locator("textarea[name=sql]")).to_contain_text("sys_invocation")
    page.locator("textarea[name=sql]").fill(
        "SELECT target_service_name AS service, count(*) AS n FROM sys_invocation "
        "GROUP BY target_service_name ORDER BY 1"
    )
    page.locator("form.sql-form button[type=submit]").click()
    expect(page.locator("table.sql thead")).to_contain_text("service")
    expect(page.locator("table.sql tbody")).to_contain_text("Kitchen")


def test_a_cross_origin_post_is_refused(cluster: Cluster) -> None:
    inv_id = cluster.send("Kitchen/stuck", "x-origin")
    cluster.wait(inv_id, lambda r: r["status"] in ("backing-off", "running"))
    kill = f"{cluster.url}/invocations/{inv_id}/kill"
    for headers in ({"Origin": "http://evil.example"}, {}, {"Origin": "null"}):
        assert httpx.post(kill, headers=headers).status_code == 403
    r = httpx.get(f"{cluster.url}/invocations", headers={"Host": "evil.example"})
    assert r.status_code == 403
    assert httpx.get(kill).status_code in (404, 405)  # no GET actions
    time.sleep(0.5)
    assert cluster.row(inv_id)["status"] != "completed"
    assert cluster.server.act("kill", inv_id).status_code in (200, 202)


def test_unreachable_cluster_exits_1_with_a_message(tmp_path: Path) -> None:
    port = free_port()
    r = subprocess.run(
        [sys.executable, "-m", "durable.devtool.cli", "dashboard", "--restate"]
        + [f"http://127.0.0.1:{port}", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"cannot reach the Restate cluster at http://127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr
    # the same from the environment
    env = {**os.environ, "DURABLE_RESTATE_URL": f"http://127.0.0.1:{port}"}
    r = subprocess.run(
        [sys.executable, "-m", "durable.devtool.cli", "dashboard", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 1 and "cannot reach the Restate cluster" in r.stderr, r.stderr


def test_a_cluster_that_goes_away_shows_a_banner(page: Page, cluster: Cluster) -> None:
    """The restate-server stops, then starts again on the same data."""
    page.goto(cluster.url + "/invocations")
    header_names_the_cluster(page, cluster)
    cluster.server.stop()
    try:
        expect(page.locator("#outage-banner")).to_contain_text(
            "The Restate cluster does not answer", timeout=20_000
        )
        page.goto(cluster.url + "/awakeables")
        expect(page.locator("#outage-banner")).to_be_visible()
    finally:
        cluster.server.start()
    expect(page.locator("#outage-banner")).to_have_count(0, timeout=20_000)
