"""Bars on one time axis (durable.devtool.timeline) from the admin API's JSON."""

from __future__ import annotations

from datetime import datetime

import pytest
from durable.devtool.timeline import MIN_WIDTH, cells, of_invocation, of_tree

pytestmark = pytest.mark.timeout(10)

NOW = datetime(2026, 1, 1, 12, 0, 30)


def t(s: float) -> str:
    return f"2026-01-01T12:00:{s:06.3f}Z"


def entry(i, kind, start, end, **kw):
    return {"index": i, "kind": kind, "name": kw.pop("name", None), "started_at": start,
            "ended_at": end, **kw}  # fmt: skip


def test_entries_share_one_axis_and_long_waits_stand_out():
    inv = {
        "status": "suspended",
        "journal": [
            entry(0, "input", t(0), t(0)),
            entry(1, "run", t(0.1), t(0.3), name="charge"),
            entry(2, "sleep", t(0.3), t(13.1)),  # a 12.8 s sleep
            entry(3, "awakeable", t(13.1), t(22.5)),  # a 9.4 s wait
            entry(4, "call", t(22.5), None, child_id="inv_child"),  # still going: to now
        ],
    }
    tl = of_invocation(inv, NOW)
    bars = {b.kind: b for b in tl.bars}
    assert tl.span_ms == 30_000
    assert bars["sleep"].ms == pytest.approx(12_800)
    assert bars["awakeable"].ms == pytest.approx(9_400)
    assert bars["sleep"].end - bars["sleep"].start == pytest.approx(12.8 / 30)
    assert bars["run"].end - bars["run"].start < 0.01
    assert bars["input"].end - bars["input"].start == pytest.approx(MIN_WIDTH)  # visible
    assert bars["call"].open and bars["call"].end == 1.0 and bars["call"].link == "inv_child"
    assert [b.index for b in tl.bars] == [0, 1, 2, 3, 4]
    assert all(0 <= b.start < b.end <= 1 for b in tl.bars)
    assert cells(bars["sleep"], 30) == (0, 13)
    assert cells(bars["awakeable"], 30) == (13, 9)
    assert cells(bars["input"], 30) == (0, 1)  # at least one cell


def test_backoff_from_the_row_or_from_every_attempt():
    row = {
        "status": "backing-off",
        "attempt": 3,
        "modified_at": t(2),
        "next_retry_at": t(6),
        "last_error": "KeyError: 'missing'\nmore",
        "journal": [entry(0, "input", t(0), t(0))],
    }
    (bar,) = [b for b in of_invocation(row, NOW).bars if b.kind == "backoff"]
    assert bar.label == "attempt 2 failed: KeyError: 'missing'" and bar.ms == 4000 and bar.open
    attempts = {
        **row,
        "attempts": [  # the shape of GET /api/invocations/{id}'s "attempts"
            {"attempt": 1, "started_at": t(0), "ended_at": t(1), "error": "E1", "outcome": "backing-off"},
            {"attempt": 2, "started_at": t(1.1), "ended_at": t(2), "error": "E2", "outcome": "backing-off"},
        ],
    }  # fmt: skip
    bars = of_invocation(attempts, NOW).bars
    assert [(b.label, round(b.ms), b.open) for b in bars if b.kind == "backoff"] == [
        ("backoff after attempt 1", 100, False),  # until attempt 2 started
        ("backoff after attempt 2", 4000, True),  # until the row's next retry, still waiting
    ]
    assert [(b.label, round(b.ms)) for b in bars if b.kind == "attempt"] == [
        ("attempt 1: E1", 1000),
        ("attempt 2: E2", 900),
    ]
    paused = {**attempts, "status": "paused", "next_retry_at": None}
    paused["attempts"] = [
        *attempts["attempts"][:1],
        {**attempts["attempts"][1], "outcome": "paused"},
    ]
    assert [b.label for b in of_invocation(paused, NOW).bars if b.kind == "backoff"] == [
        "backoff after attempt 1"
    ]
    killed = {**attempts, "status": "killed", "next_retry_at": None, "completed_at": t(3)}
    bars = [b for b in of_invocation(killed, NOW).bars if b.kind == "backoff"]
    assert (bars[-1].label, round(bars[-1].ms), bars[-1].open) == (
        "backoff after attempt 2",
        1000,  # from the failure to the kill
        False,
    )


def test_a_tree_is_one_waterfall_from_the_root():
    def node(i, depth, start, end, status="completed"):
        return {"id": f"inv_{i}", "service": "S", "handler": f"h{i}", "key": None,
                "status": status, "created_at": start, "completed_at": end, "depth": depth,
                "entry": None if depth == 0 else i, "via": "root" if depth == 0 else "call"}  # fmt: skip

    tree = {
        "nodes": [
            node(0, 0, t(0), t(10)),
            node(1, 1, t(2), t(4)),
            node(2, 1, t(5), None, "running"),
        ]
    }
    tl = of_tree(tree, NOW)
    assert [(b.link, b.depth) for b in tl.bars] == [("inv_0", 0), ("inv_1", 1), ("inv_2", 1)]
    assert tl.bars[0].start == 0 and tl.bars[2].open and tl.bars[2].end == 1.0
    assert tl.bars[1].note == "call from entry 1"
    assert of_tree({"nodes": []}, NOW).bars == ()
