"""Every page in the light and the dark theme at 1280x800: screenshots for a person to
look at (test-artifacts/), no horizontal scrolling, no console error (a CSP violation
or a failed request would be one), and the theme follows the system setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def _pages(runtime) -> dict[str, str]:
    runtime.call("/Cart/look/fill", "look")
    runtime.call("/Shop/buy", {"item": "book", "qty": 1})
    waiting = runtime.send("/Shop/approve", "look")
    runtime.wait_status(waiting, "suspended", "running")
    cart = runtime.http.get(
        f"{runtime.admin_url}/api/invocations", params={"key": "look", "limit": 1}
    ).json()["invocations"][0]["id"]
    return {
        "list": "/invocations",
        "detail-object": f"/invocations/{cart}",
        "detail-waiting": f"/invocations/{waiting}",
        "awakeables": "/awakeables",
        "state": "/state?service=Cart&key=look",
        "services": "/services",
        "sql": "/sql?sql=SELECT+id,+service,+handler,+status+FROM+invocations+LIMIT+20",
        "not-found": "/invocations/inv_00000000000000000000000000",
    }


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_in_both_themes(browser: Browser, runtime, artifacts: Path, scheme) -> None:
    pages = _pages(runtime)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        for name, path in pages.items():
            page.goto(runtime.admin_url + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(artifacts / f"{scheme}-{name}.png"))
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 1280, f"{name}: the page is {width} px wide at 1280"
            bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
            dark = sum(int(c) for c in bg[bg.index("(") + 1 : -1].split(",")[:3]) < 200
            assert dark == (scheme == "dark"), f"{name}: background {bg} in the {scheme} theme"
    finally:
        context.close()
    # the 404 page's own status is the one console error a browser reports for it
    assert [p for p in problems if "404" not in p] == []
