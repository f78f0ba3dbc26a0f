"""The runtime's event log: numbered console lines, followed with ?after=N."""

from __future__ import annotations

import threading

import pytest
from durable.devtool.events import EventLog

pytestmark = pytest.mark.timeout(30)


def test_numbered_bounded_and_followed_after_a_number():
    log = EventLog(size=3)
    for i in range(5):
        log.add(f"line {i}", "error" if i == 4 else "info")
    body = log.since(0)
    assert body["last"] == 5 and body["boot"] == log.boot
    assert [(e["seq"], e["message"]) for e in body["events"]] == [
        (3, "line 2"),
        (4, "line 3"),
        (5, "line 4"),
    ]
    assert body["events"][-1]["level"] == "error" and body["events"][-1]["at"].endswith("Z")
    assert [e["seq"] for e in log.since(4)["events"]] == [5]
    assert log.since(5)["events"] == [] and log.since(5)["last"] == 5
    assert [e["seq"] for e in log.since(0, limit=1)["events"]] == [3]
    assert EventLog().since()["last"] == 0


def test_safe_from_several_threads():
    log = EventLog(size=10_000)
    threads = [
        threading.Thread(target=lambda: [log.add("x") for _ in range(500)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [e["seq"] for e in log.since(0, limit=10_000)["events"]]
    assert seqs == list(range(1, 2001))
