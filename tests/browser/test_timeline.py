"""The timeline, the call links and tree, and text search, in a real browser."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def _awakeable_id(runtime, inv_id: str) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for e in runtime.invocation(inv_id)["journal"]:
            if e["kind"] == "awakeable":
                return e["payload"]["id"]
        time.sleep(0.05)
    raise AssertionError("no awakeable entry")


def _widths(page: Page) -> dict[str, tuple[float, float, float]]:
    """kind -> (x, width, track width) of the first bar of that kind, in pixels."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#timeline .tl-row[data-kind]')]
            .reverse().map(row => {
              const bar = row.querySelector('rect').getBoundingClientRect();
              const track = row.querySelector('svg').getBoundingClientRect();
              return [row.dataset.kind, [bar.x - track.x, bar.width, track.width]];
            }))"""
    )


def test_timeline_links_tree_and_search(page: Page, runtime, artifacts: Path) -> None:
    inv_id = runtime.send("/Trip/plan", "oslo")
    aw_id = _awakeable_id(runtime, inv_id)
    time.sleep(0.8)  # a wait that must stand out
    r = runtime.http.post(f"{runtime.url}/restate/awakeables/{aw_id}/resolve", json="12A")
    assert r.status_code in (200, 202), r.text
    inv = runtime.wait_status(inv_id, "completed")
    assert inv["output_value"] == "booked oslo seat 12A"

    page.goto(f"{runtime.admin_url}/invocations/{inv_id}")
    expect(page.locator("#timeline")).to_be_visible()
    kinds = page.locator("#timeline .tl-row[data-kind]")
    expect(kinds).to_have_count(len(inv["journal"]))
    w = _widths(page)
    for kind, (x, width, track) in w.items():
        assert width >= 1 and x >= -0.5 and x + width <= track + 0.5, (kind, x, width, track)
    track = w["sleep"][2]
    assert w["sleep"][1] > 0.3 * track  # 1.2 s of about 2.1 s
    assert w["awakeable"][1] > 0.2 * track  # 0.8 s
    assert w["run"][1] < 0.05 * track  # a body that took microseconds
    assert w["awakeable"][0] >= w["sleep"][0] + w["sleep"][1] - 1  # after the sleep
    sleep_row = page.locator('#timeline .tl-row[data-kind="sleep"]')
    expect(sleep_row.locator(".tl-ms")).to_have_text(re.compile(r"^1\.\d\d s$"))
    page.screenshot(path=str(artifacts / "timeline.png"), full_page=True)

    # narrow: the bars stay drawn, under their labels
    page.set_viewport_size({"width": 560, "height": 900})
    narrow = _widths(page)
    assert narrow["sleep"][1] > 0.3 * narrow["sleep"][2] and narrow["sleep"][2] > 300
    page.screenshot(path=str(artifacts / "timeline-narrow.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    # the call entry links to its child, which links back to the entry
    call = next(e for e in inv["journal"] if e["kind"] == "call")
    page.locator('#timeline .tl-row[data-kind="call"] a.tl-link').click()
    expect(page).to_have_url(re.compile(call["child_id"] + "$"))
    facts = page.locator(".facts")
    expect(facts).to_contain_text("Called by")
    facts.locator(f'a[href="/invocations/{inv_id}#entry-{call["index"]}"]').click()
    expect(page).to_have_url(re.compile(f"{inv_id}#entry-{call['index']}$"))

    send = next(e for e in inv["journal"] if e["kind"] == "one_way_call")
    page.goto(f"{runtime.admin_url}/invocations/{send['child_id']}")
    expect(page.locator(".facts")).to_contain_text("Sent by")

    # the whole tree as one waterfall, from a leaf
    page.locator("#tree-link").click()
    expect(page).to_have_url(re.compile(send["child_id"] + "/tree$"))
    rows = page.locator("#call-tree .tl-row[data-kind]")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator(".tl-label a")).to_have_text("Trip/plan")
    expect(page.locator("#call-tree .tl-row.focus")).to_have_count(1)
    expect(page.locator("#tree-note")).to_have_count(0)
    page.screenshot(path=str(artifacts / "call-tree.png"), full_page=True)
    rows.nth(0).locator(".tl-label a").click()
    expect(page).to_have_url(re.compile(inv_id + "$"))

    # search by text: the call's input and the root's output say "seat 12A"
    page.goto(f"{runtime.admin_url}/invocations")
    page.fill('input[name="q"]', "SEAT 12a")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"q=SEAT\+12a"))
    ids = page.locator("#inv-table tbody tr[data-id]")
    expect(ids).to_have_count(2)
    got = {ids.nth(i).get_attribute("data-id") for i in range(2)}
    assert got == {inv_id, call["child_id"]}
