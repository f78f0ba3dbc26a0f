"""What a person does in the dashboard, in a real browser against a real runtime."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_list_updates_live_and_filters(page: Page, runtime, artifacts: Path) -> None:
    runtime.call("/Shop/buy", {"item": "pen", "qty": 2})
    page.goto(runtime.admin_url + "/")
    expect(page).to_have_url(re.compile(r"/invocations$"))
    expect(page.locator("h1")).to_have_text("Invocations")
    page.evaluate("window.__sameDocument = true")

    # sent after the page loaded: it appears without a reload
    inv_id = runtime.send("/Steps/three", 1)
    row = page.locator(f'tr[data-id="{inv_id}"]')
    expect(row).to_be_visible(timeout=10_000)
    expect(row.locator(".chip")).to_have_text("completed", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("#counts")).to_contain_text("completed")
    shot(page, artifacts, "invocations")

    # filter by service: only Steps rows; by status: only completed ones
    page.select_option('select[name="service"]', "Steps")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"service=Steps"))
    targets = page.locator("#inv-table tbody tr .target .svc")
    expect(targets.first).to_have_text("Steps")
    assert set(targets.all_inner_texts()) == {"Steps"}
    expect(page.locator(f'tr[data-id="{inv_id}"]')).to_be_visible()

    page.goto(runtime.admin_url + "/invocations?service=Shop&handler=buy&status=killed")
    expect(page.locator("#inv-table td.empty")).to_contain_text("No invocation matches")
    page.goto(runtime.admin_url + "/invocations?since=banana")
    expect(page.locator("#inv-table .flash.error")).to_contain_text("bad time")
    shot(page, artifacts, "invocations-filtered-error")


def test_keyset_pages(page: Page, runtime) -> None:
    ids = [runtime.send("/Steps/three", i) for i in range(7)]
    page.goto(runtime.admin_url + "/invocations?service=Steps&limit=25")
    # newest first; ids are time-ordered
    shown = page.locator("#inv-table tbody tr[data-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )
    assert shown == sorted(shown, reverse=True)
    assert set(ids) <= set(shown)
    # a deep page by cursor: everything older than the 3rd newest
    page.goto(runtime.admin_url + f"/invocations?service=Steps&after={shown[2]}")
    first = page.locator("#inv-table tbody tr[data-id]").first.get_attribute("data-id")
    assert first == shown[3]
    expect(page.locator("a[rel=prev]")).to_be_visible()


def test_detail_and_time_travel(page: Page, runtime, artifacts: Path) -> None:
    assert runtime.call("/Cart/tt-key/fill", "x").json() == "x"
    page.goto(runtime.admin_url + "/invocations?key=tt-key")
    page.locator("#inv-table a.id").first.click()
    expect(page.locator(".head h1")).to_have_text(re.compile(r"^inv_"))
    expect(page.locator(".head .chip").first).to_have_text("completed")
    kinds = page.locator("table.timeline tbody tr[data-entry] .kind").all_inner_texts()
    assert kinds == [
        "input",
        "set_state",
        "set_state",
        "run",
        "set_state",
        "clear_state",
        "output",
    ]
    expect(page.locator(".card.output")).to_contain_text('"x"')
    expect(page.locator("aside")).to_contain_text("Request")

    slider = page.locator("#tt-slider")
    state = page.locator("#state-at .state-at")
    # the last entry first: a=3, b cleared
    expect(state).to_have_attribute("data-entry", "6")

    def state_at(n: int) -> dict[str, str]:
        slider.fill(str(n))
        expect(state).to_have_attribute("data-entry", str(n))
        names = state.locator("table.kv th").all_inner_texts()
        values = state.locator("table.kv td").all_inner_texts()
        return {k.split()[0]: v.strip() for k, v in zip(names, values, strict=True)}

    assert state_at(1) == {"a": "1"}
    expect(page.locator('tr[data-entry="1"]')).to_have_class(re.compile("tt-current"))
    assert state_at(2) == {"a": "1", "b": '"two"'}
    assert state_at(5) == {"a": "3"}
    expect(state.locator(".cleared")).to_contain_text("b")
    # clicking an entry's index moves the slider there
    page.locator('tr[data-entry="4"] td.idx').click()
    expect(state).to_have_attribute("data-entry", "4")
    expect(state.locator("tr.changed")).to_contain_text("a")
    shot(page, artifacts, "invocation-detail")


def test_resolve_awakeable_from_its_form(page: Page, runtime, artifacts: Path) -> None:
    inv_id = runtime.send("/Shop/approve", "ann")
    runtime.wait_status(inv_id, "suspended", "running")
    page.goto(runtime.admin_url + "/awakeables")
    row = page.locator("tr[data-awakeable]", has=page.locator(f'a[href="/invocations/{inv_id}"]'))
    expect(row).to_be_visible(timeout=10_000)
    row.locator("summary", has_text="Resolve").click()
    editor = row.locator('textarea[name="value"]')
    # prefilled from the handler's type_hint (the Approval dataclass, with its default)
    assert json.loads(editor.input_value()) == {"by": "", "ok": True}
    expect(row.locator(".pop")).to_contain_text("Approval")
    shot(page, artifacts, "awakeables")

    editor.fill('{"by": "bob",')
    expect(row.locator(".json-status")).to_contain_text("Not valid JSON")
    expect(row.locator('button[data-action="resolve"]')).to_be_disabled()
    editor.fill('{"by": "bob", "ok": true}')
    expect(row.locator('button[data-action="resolve"]')).to_be_enabled()
    row.locator('button[data-action="resolve"]').click()
    expect(page.locator("#pending .flash.ok")).to_contain_text("resolved")

    page.goto(runtime.admin_url + f"/invocations/{inv_id}")
    expect(page.locator(".head .chip").first).to_have_text("completed", timeout=10_000)
    expect(page.locator(".card.output")).to_contain_text("ann approved by bob")


def test_resolve_workflow_promise(page: Page, runtime) -> None:
    inv_id = runtime.send("/Signup/wf-1/run", "a@b.c")
    runtime.wait_status(inv_id, "suspended", "running")
    page.goto(runtime.admin_url + "/awakeables")
    row = page.locator("tr[data-promise]", has=page.locator(f'a[href="/invocations/{inv_id}"]'))
    row.locator("summary", has_text="Resolve").click()
    editor = row.locator('textarea[name="value"]')
    assert json.loads(editor.input_value()) == 0  # type_hint=int
    editor.fill("42")
    row.locator('button[data-action="resolve"]').click()
    expect(page.locator("#pending .flash.ok")).to_contain_text("resolved")
    assert runtime.wait_status(inv_id, "completed")["output_value"] == "a@b.c: 42"


def test_kill_from_the_detail_page(page: Page, runtime) -> None:
    inv_id = runtime.send("/Shop/slow", 5)
    runtime.wait_status(inv_id, "suspended", "running")
    page.goto(runtime.admin_url + f"/invocations/{inv_id}")
    expect(page.locator(".waiting")).to_contain_text("timer")
    page.locator("summary", has_text="Kill").click()
    page.locator('button[data-action="kill"]').click()
    expect(page.locator("#inv-live .flash.ok")).to_contain_text("Killed: it stopped at once")
    expect(page.locator(".head .chip").first).to_have_text("killed")
    assert runtime.invocation(inv_id)["status"] == "killed"


def test_a_cancel_says_cancelled_not_the_status_before(page: Page, runtime) -> None:
    inv_id = runtime.send("/Shop/slow", 6)
    runtime.wait_status(inv_id, "suspended")
    page.goto(runtime.admin_url + f"/invocations/{inv_id}")
    page.locator("summary", has_text="Cancel").click()
    page.locator('button[data-action="cancel"]').click()
    expect(page.locator("#inv-live .flash.ok")).to_have_text("Cancelled.")
    expect(page.locator(".head .chip").first).to_have_text("cancelled")
    # a finished invocation offers purge only
    expect(page.locator('summary:has-text("Purge")')).to_be_visible()
    expect(page.locator('summary:has-text("Kill")')).to_have_count(0)


def test_restart_from_an_entry(page: Page, runtime, artifacts: Path) -> None:
    assert runtime.call("/Steps/three", 10).json() == 122
    inv_id = page.request.get(runtime.admin_url + "/api/invocations?service=Steps&limit=1").json()[
        "invocations"
    ][0]["id"]
    page.goto(runtime.admin_url + f"/invocations/{inv_id}")
    entry = page.locator('tr[data-entry="2"]')
    entry.locator("summary", has_text="Restart here").click()
    entry.locator('button[data-action="restart"]').click()
    expect(page).to_have_url(re.compile(rf"restarted_from={inv_id}"))
    new_id = page.url.split("/invocations/")[1].split("?")[0]
    assert new_id != inv_id
    expect(page.locator(".facts")).to_contain_text(inv_id)
    expect(page.locator(".head .chip").first).to_have_text("completed", timeout=10_000)
    new = runtime.invocation(new_id)
    old = runtime.invocation(inv_id)
    assert new["restarted_from"] == inv_id and new["output_value"] == 122
    assert [e["result"] for e in new["journal"][:2]] == [e["result"] for e in old["journal"][:2]]
    shot(page, artifacts, "invocation-restarted")


def test_invoke_a_handler_from_its_form(page: Page, runtime, artifacts: Path) -> None:
    page.goto(runtime.admin_url + "/services")
    row = page.locator('section[data-service="Shop"] tr[data-handler="buy"]')
    row.locator("summary", has_text="Invoke").click()
    form = row.locator("form.invoke-form")
    # fields generated from the Order dataclass
    expect(form.locator('input[name="f.item"]')).to_be_visible()
    expect(form.locator('input[name="f.qty"]')).to_have_attribute("type", "number")
    expect(form.locator('input[name="f.express"]')).to_have_attribute("type", "checkbox")
    form.locator('input[name="f.item"]').fill("lamp")
    form.locator('input[name="f.qty"]').fill("4")
    form.locator('input[name="f.express"]').check()
    shot(page, artifacts, "services-invoke-form")
    form.locator('button[data-action="invoke"]').click()
    result = row.locator(".invoke-result")
    expect(result).to_contain_text("completed")
    expect(result.locator("pre.json")).to_contain_text('"price": 12')
    expect(result.locator("pre.json")).to_contain_text('"express": true')
    inv_id = result.locator("a.id").inner_text()
    assert runtime.invocation(inv_id)["request"]["body"] == {
        "item": "lamp",
        "qty": 4,
        "express": True,
    }
    shot(page, artifacts, "services")

    # a keyed handler asks for its key; a bad field is named
    cart = page.locator('section[data-service="Cart"] tr[data-handler="put"]')
    cart.locator("summary", has_text="Invoke").click()
    cform = cart.locator("form.invoke-form")
    cform.locator('input[name="key"]').fill("from-form")
    cform.locator('textarea[name="value"]').fill('{"n": 1}')
    cform.locator('button[data-action="invoke"]').click()
    expect(cart.locator(".invoke-result")).to_contain_text("completed")


def test_state_browser_edits_a_value(page: Page, runtime, artifacts: Path) -> None:
    runtime.call("/Cart/edit-me/put", {"n": 1})
    page.goto(runtime.admin_url + "/state")
    page.locator("a", has_text="Cart").first.click()
    page.locator("ul.keys a", has_text="edit-me").click()
    entry = page.locator('.state-entry[data-name="value"]')
    expect(entry.locator("pre.json")).to_contain_text('"n": 1')
    entry.locator("summary", has_text="Edit").click()
    entry.locator("textarea").fill('{"n": 2, "note": "edited"}')
    entry.locator('button[data-action="save"]').click()
    expect(page.locator("#state-browser .flash.ok")).to_contain_text("Set 'value'")
    expect(page.locator('.state-entry[data-name="value"] pre.json')).to_contain_text('"n": 2')
    state = page.request.get(runtime.admin_url + "/api/state/Cart/edit-me").json()["state"]
    assert state == {"value": {"n": 2, "note": "edited"}}
    shot(page, artifacts, "state")


def test_sql_page(page: Page, runtime, artifacts: Path) -> None:
    page.goto(runtime.admin_url + "/sql")
    page.locator('textarea[name="sql"]').fill(
        "SELECT service, count(*) AS n FROM invocations GROUP BY service ORDER BY service"
    )
    page.locator("form.sql-form button[type=submit]").click()
    expect(page.locator("table.sql thead")).to_contain_text("service")
    expect(page.locator("table.sql tbody")).to_contain_text("Shop")
    shot(page, artifacts, "sql")
    page.goto(runtime.admin_url + "/sql?sql=DELETE+FROM+invocations")
    expect(page.locator("#sql-result .flash.error")).to_contain_text("read-only")


def test_bulk_action_over_the_filter(page: Page, runtime, artifacts: Path) -> None:
    ids = [runtime.send("/Shop/slow", 100 + i) for i in range(3)]
    for i in ids:  # a handler waiting on a timer is suspended after --suspend-after (1 s)
        runtime.wait_status(i, "suspended")
    page.goto(runtime.admin_url + "/invocations?service=Shop&handler=slow&status=suspended")
    page.select_option('form.bulk-form select[name="action"]', "kill")
    page.locator("form.bulk-form button[type=submit]").click()
    panel = page.locator("#bulk-panel")
    expect(panel).to_contain_text("Kill")
    expect(panel).to_contain_text("matching service = Shop, handler = slow, status = suspended")
    shot(page, artifacts, "invocations-bulk-confirm")
    assert {runtime.invocation(i)["status"] for i in ids} <= {"suspended", "running"}
    panel.locator("button.danger").click()
    expect(panel.locator(".flash")).to_contain_text("done")
    for i in ids:
        runtime.wait_status(i, "killed")


def test_pause_resume_and_replay(page: Page, runtime) -> None:
    inv_id = runtime.send("/Shop/flaky", "again")
    runtime.wait_status(inv_id, "backing-off")
    page.goto(runtime.admin_url + f"/invocations/{inv_id}")
    expect(page.locator(".card.error").first).to_contain_text("ValueError: again")
    expect(page.locator("tr.retry-row")).to_contain_text("failed")
    page.locator('button[data-action="pause"]').click()
    expect(page.locator(".head .chip").first).to_have_text("paused")
    page.locator('button[data-action="resume"]').click()
    expect(page.locator("#inv-live .flash.ok")).to_contain_text("Resume")
    page.locator("summary", has_text="Kill").click()
    page.locator('button[data-action="kill"]').click()
    expect(page.locator(".head .chip").first).to_have_text("killed")

    assert runtime.call("/Steps/three", 3).json() == 108
    done = page.request.get(runtime.admin_url + "/api/invocations?handler=three&limit=1").json()
    page.goto(runtime.admin_url + f"/invocations/{done['invocations'][0]['id']}")
    page.locator('button[data-action="replay"]').click()
    expect(page.locator("#inv-live .flash.ok")).to_contain_text("Replay matches")


def test_services_show_the_import_error_and_recover(
    page: Page, write_app, dev_server, artifacts: Path
) -> None:
    good = """
        from durable import Context, Service

        hello = Service("Hello")

        @hello.handler()
        async def hi(ctx: Context, name: str) -> str:
            return "hi " + name
    """
    app = write_app(
        'raise RuntimeError("<script>alert(1)</script> config missing")\n', name="flaky_app.py"
    )
    srv = dev_server(app)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(srv.admin_url + "/services")
    error = page.locator("#load-error")
    expect(error).to_contain_text("The app failed to load")
    expect(error).to_contain_text("RuntimeError: <script>alert(1)</script> config missing")
    shot(page, artifacts, "services-load-error")
    # fixed on disk: the runtime reloads it and the page follows without a reload
    write_app(good, name="flaky_app.py")
    expect(page.locator('section[data-service="Hello"]')).to_be_visible(timeout=20_000)
    expect(page.locator("#load-error")).to_have_count(0)
    assert dialogs == []


def test_failed_status_attempts_and_logs(page: Page, runtime, artifacts: Path) -> None:
    r = runtime.call("/Shop/fail", "out of tomatoes")
    assert r.status_code == 400
    failed = page.request.get(runtime.admin_url + "/api/invocations?handler=fail&limit=1").json()
    failed_id = failed["invocations"][0]["id"]

    # the list: a red 'failed' chip, a count chip and a filter for it
    page.goto(runtime.admin_url + "/invocations?handler=fail")
    row = page.locator(f'tr[data-id="{failed_id}"]')
    expect(row.locator(".chip").first).to_have_text("failed")
    expect(row.locator(".chip.red").first).to_be_visible()
    chip = page.locator("#counts a.chip", has_text="failed")
    expect(chip).to_be_visible()
    chip.click()
    expect(page).to_have_url(re.compile(r"status=failed"))
    expect(page.locator(f'tr[data-id="{failed_id}"]')).to_be_visible()
    expect(page.locator("#inv-table tbody tr .chip", has_text="completed")).to_have_count(0)

    # the page: the failure, its attempt with file:line and stack trace
    page.goto(runtime.admin_url + f"/invocations/{failed_id}")
    expect(page.locator(".head .chip").first).to_have_text("failed 400")
    expect(page.locator(".card.error h2")).to_have_text("Failed with 400")
    attempt = page.locator("#attempts tr.attempt")
    expect(attempt).to_have_count(1)
    expect(attempt).to_contain_text("app.py:")
    expect(attempt).to_contain_text("out of tomatoes")
    expect(page.locator("#attempts details.stack pre")).to_contain_text("raise TerminalError")
    shot(page, artifacts, "invocation-failed")

    # retries: every failed attempt is a row
    flaky = runtime.send("/Shop/flaky", "again and again")
    deadline = 40
    while len(runtime.invocation(flaky)["attempts"]) < 2 and deadline:
        page.wait_for_timeout(250)
        deadline -= 1
    page.goto(runtime.admin_url + f"/invocations/{flaky}")
    expect(page.locator("#attempts tr.attempt").nth(1)).to_contain_text("ValueError")
    page.request.post(
        runtime.admin_url + f"/api/invocations/{flaky}/kill",
        headers={"Origin": runtime.admin_url},
    )

    # logs: what the handler printed and logged, escaped
    assert runtime.call("/Shop/noisy", "pears").json() == "pears"
    noisy = page.request.get(runtime.admin_url + "/api/invocations?handler=noisy&limit=1").json()
    page.goto(runtime.admin_url + f"/invocations/{noisy['invocations'][0]['id']}")
    logs = page.locator("#logs .log-line")
    expect(logs).to_have_count(2)
    expect(logs.nth(0)).to_contain_text("looking for <b>pears</b>")
    expect(logs.nth(1)).to_contain_text("WARNING")
    expect(logs.nth(1)).to_contain_text("shop: low stock of pears")
    assert page.locator("#logs b").count() == 0
    shot(page, artifacts, "invocation-logs")


def test_every_page_shows_a_banner_while_the_app_does_not_load(
    page: Page, write_app, dev_server, artifacts: Path
) -> None:
    good = """
        from durable import Context, Service

        hello = Service("Hello")

        @hello.handler()
        async def hi(ctx: Context, name: str) -> str:
            return "hi " + name
    """
    path = write_app(good, name="banner_app.py")
    srv = dev_server(path)
    page.goto(srv.admin_url + "/invocations")
    banner = page.locator("#app-banner")
    expect(banner).to_be_empty()
    write_app(good.replace("name: str) -> str:", "name: str) -> str"), name="banner_app.py")
    # the open page learns it without a reload
    expect(banner).to_contain_text("The app does not load", timeout=20_000)
    expect(banner).to_contain_text(f"syntax error in {path}, line 7")
    inv = httpx.post(f"{srv.url}/Hello/hi/send", json="Ann", timeout=10).json()["invocationId"]
    row = page.locator(f'tr[data-id="{inv}"]')
    expect(row).to_contain_text("the app to load (syntax error in", timeout=10_000)
    shot(page, artifacts, "app-does-not-load")
    for where in ("/awakeables", "/state", "/services", "/sql", f"/invocations/{inv}"):
        page.goto(srv.admin_url + where)
        expect(page.locator("#app-banner")).to_contain_text("The app does not load")
    expect(page.locator("body")).to_contain_text("the app to load")  # the invocation waits
    shot(page, artifacts, "app-does-not-load-invocation")
    page.goto(srv.admin_url + "/services")
    expect(page.locator("#load-error")).to_contain_text("no code runs until the app loads")
    write_app(good, name="banner_app.py")
    expect(page.locator("#app-banner")).to_be_empty(timeout=20_000)
    page.goto(srv.admin_url + f"/invocations/{inv}")
    expect(page.locator("body")).to_contain_text("hi Ann", timeout=10_000)
