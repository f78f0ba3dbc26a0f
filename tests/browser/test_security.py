"""Escaping and the same-origin rule, in a real browser.

A payload made to break out of HTML (``<script>``, ``"><img onerror>``) reaches every
view as a key, an input, a state value, a terminal error and a retry error: no dialog
opens and the text is shown as text. A page served on another port cannot kill an
invocation (form POST, fetch), nor invoke a handler or resolve an awakeable through the
ingress, and neither can a request naming another host.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

XSS = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
#: how the payload reads inside a JSON value (its quote escaped)
XSS_JSON = json.dumps(XSS)[1:-1]


def test_hostile_payloads_are_text(page: Page, runtime, artifacts: Path) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    key = quote(XSS, safe="")
    assert runtime.call(f"/Cart/{key}/put", {"note": XSS}).status_code == 200
    failed = runtime.call("/Shop/fail", XSS)
    assert failed.status_code == 400 and failed.json()["message"] == XSS
    flaky = runtime.send("/Shop/flaky", XSS)
    runtime.wait_status(flaky, "backing-off", "paused")
    put_id = page.request.get(
        runtime.admin_url + "/api/invocations", params={"service": "Cart", "key": XSS}
    ).json()["invocations"][0]["id"]
    fail_id = page.request.get(
        runtime.admin_url + "/api/invocations", params={"handler": "fail"}
    ).json()["invocations"][0]["id"]

    def no_injection() -> None:
        assert page.locator("img[src=x]").count() == 0
        assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
        assert dialogs == []

    # list: the key in the target column, the errors in the last one
    page.goto(runtime.admin_url + "/invocations")
    expect(page.locator(f'tr[data-id="{put_id}"] .target .key')).to_have_text(XSS)
    expect(page.locator(f'tr[data-id="{fail_id}"] .detail')).to_contain_text(XSS)
    expect(page.locator(f'tr[data-id="{flaky}"] .detail')).to_contain_text(XSS)
    no_injection()
    shot = artifacts / "xss-list.png"
    page.screenshot(path=str(shot), full_page=True)

    # detail: key, request body, journal, output, state as of an entry
    page.goto(runtime.admin_url + f"/invocations/{put_id}")
    expect(page.locator(".head .target .key")).to_have_text(XSS)
    expect(page.locator("aside")).to_contain_text(XSS_JSON)
    expect(page.locator("#state-at")).to_contain_text(XSS_JSON)
    expect(page.locator(".card.output")).to_contain_text(XSS_JSON)
    no_injection()
    page.screenshot(path=str(artifacts / "xss-detail.png"), full_page=True)

    # error views: a terminal failure and a retried error
    page.goto(runtime.admin_url + f"/invocations/{fail_id}")
    expect(page.locator(".card.error")).to_contain_text(XSS)
    no_injection()
    page.goto(runtime.admin_url + f"/invocations/{flaky}")
    expect(page.locator(".card.error").first).to_contain_text(XSS)
    no_injection()
    page.screenshot(path=str(artifacts / "xss-error.png"), full_page=True)

    # state browser: the key in the list and the value
    page.goto(runtime.admin_url + "/state?service=Cart")
    expect(page.locator("ul.keys")).to_contain_text(XSS)
    page.locator("ul.keys a", has_text="onerror").click()
    expect(page.locator(".entries-col h2 .key")).to_have_text(XSS)
    expect(page.locator('.state-entry[data-name="value"]')).to_contain_text(XSS_JSON)
    no_injection()
    page.screenshot(path=str(artifacts / "xss-state.png"), full_page=True)

    # the SQL page shows stored text as text too
    page.goto(
        runtime.admin_url
        + "/sql?sql="
        + quote("SELECT key FROM invocations WHERE key LIKE '%onerror%'")
    )
    expect(page.locator("table.sql tbody")).to_contain_text(XSS)
    no_injection()
    runtime.http.post(f"{runtime.admin_url}/api/invocations/{flaky}/kill")


@pytest.fixture
def other_origin() -> Iterator[tuple[str, dict[str, str]]]:
    """A tiny web server on another port serving the pages put in its dict."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_another_origin_cannot_kill(page: Page, runtime, other_origin) -> None:
    origin, pages = other_origin
    inv_id = runtime.send("/Shop/slow", 1)
    runtime.wait_status(inv_id, "suspended", "running")
    dashboard_kill = f"{runtime.admin_url}/invocations/{inv_id}/kill"
    api_kill = f"{runtime.admin_url}/api/invocations/{inv_id}/kill"
    pages["/form.html"] = (
        f'<form id="f" method="post" action="{dashboard_kill}"><input name="x" value="1"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    pages["/fetch.html"] = (
        "<script>for (const u of "
        f'["{dashboard_kill}", "{api_kill}"]) '
        'fetch(u, {method: "POST", mode: "no-cors", body: "x=1", '
        'headers: {"Content-Type": "application/x-www-form-urlencoded"}})'
        ".then(() => document.title = document.title + 'sent ')"
        ".catch(() => document.title = document.title + 'failed ');</script>"
    )
    pages["/api-form.html"] = (
        f'<form id="f" method="post" action="{api_kill}" enctype="text/plain">'
        '<input name="{}" value=""></form><script>document.getElementById("f").submit()</script>'
    )

    with page.expect_response(dashboard_kill) as answer:
        page.goto(origin + "/form.html")
    assert answer.value.status == 403
    expect(page.locator("body")).to_contain_text("cross-origin request refused")

    with page.expect_response(api_kill) as answer:
        page.goto(origin + "/api-form.html")
    assert answer.value.status == 403

    page.goto(origin + "/fetch.html")
    expect(page).to_have_title(re.compile(r"^sent\s*sent\s*$"), timeout=10_000)
    assert runtime.invocation(inv_id)["status"] in ("suspended", "running")

    # the same kill from the dashboard's own page works
    page.goto(f"{runtime.admin_url}/invocations/{inv_id}")
    page.locator("summary", has_text="Kill").click()
    page.locator('button[data-action="kill"]').click()
    expect(page.locator(".head .chip").first).to_have_text("killed")


def test_another_origin_cannot_use_the_ingress(page: Page, runtime, other_origin) -> None:
    origin, pages = other_origin
    key = "from-another-site"
    put = f"{runtime.url}/Cart/{key}/put"
    resolve = f"{runtime.url}/restate/awakeables/sign_1abc/resolve"
    pages["/ingress-form.html"] = (
        f'<form id="f" method="post" action="{put}" enctype="text/plain">'
        # text/plain sends name=value: this one is the JSON {"note": "="}
        '<input name="{&quot;note&quot;: &quot;" value="&quot;}"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    pages["/ingress-fetch.html"] = (
        "<script>for (const u of "
        f'["{put}", "{resolve}"]) '
        'fetch(u, {method: "POST", mode: "no-cors", body: "1", '
        'headers: {"Content-Type": "text/plain"}})'
        ".then(() => document.title = document.title + 'sent ')"
        ".catch(() => document.title = document.title + 'failed ');</script>"
    )
    with page.expect_response(put) as answer:
        page.goto(origin + "/ingress-form.html")
    assert answer.value.status == 403
    expect(page.locator("body")).to_contain_text("cross-origin request refused")
    page.goto(origin + "/ingress-fetch.html")
    expect(page).to_have_title(re.compile(r"^sent\s*sent\s*$"), timeout=10_000)
    found = runtime.http.get(
        runtime.admin_url + "/api/invocations", params={"service": "Cart", "key": key}
    ).json()
    assert found["invocations"] == []
    # the same call without a browser (no Origin) works
    assert runtime.call(f"/Cart/{key}/put", {"a": 1}).status_code == 200


def test_origin_host_and_headers(runtime) -> None:
    inv_id = runtime.send("/Shop/slow", 2)
    runtime.wait_status(inv_id, "suspended", "running")
    kill = f"{runtime.admin_url}/invocations/{inv_id}/kill"
    with httpx.Client(timeout=10) as http:
        # no Origin and no Referer: not the dashboard's page either
        assert http.post(kill).status_code == 403
        assert http.post(kill, headers={"Origin": "null"}).status_code == 403
        assert http.post(kill, headers={"Referer": "http://evil.example/x"}).status_code == 403
        host = runtime.admin_url.removeprefix("http://")
        assert http.post(kill, headers={"Origin": f"http://{host}.evil.example"}).status_code == 403
        # DNS rebinding: a page on another name that resolves to 127.0.0.1
        r = http.get(f"{runtime.admin_url}/invocations", headers={"Host": "evil.example:80"})
        assert r.status_code == 403
        assert runtime.invocation(inv_id)["status"] in ("suspended", "running")
        # GET never changes anything
        assert http.get(kill).status_code == 405
        assert runtime.invocation(inv_id)["status"] in ("suspended", "running")
        page = http.get(f"{runtime.admin_url}/invocations")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["server-timing"].startswith("app;dur=")
        # the admin API: the same rule (scheme, host and port), but no Origin is a client
        api = f"{runtime.admin_url}/api/sql"
        q = {"sql": "select 1"}
        https = runtime.admin_url.replace("http://", "https://")
        assert http.post(api, json=q, headers={"Origin": https}).status_code == 403
        assert (
            http.post(api, json=q, headers={"Referer": "http://evil.example/"}).status_code == 403
        )
        assert http.post(api, json=q).status_code == 200
        ok = http.post(kill, headers={"Origin": runtime.admin_url})
        assert ok.status_code == 200 and "killed" in ok.text
