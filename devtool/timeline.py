"""Bars on one time axis: an invocation's journal entries (and its failed attempts), or a
call tree's invocations, laid out from the admin API's JSON for the dashboard (as
percentages) and the TUI (as character cells) alike.

Each journal item of ``GET /api/invocations/{id}`` has ``started_at``/``ended_at`` (see
``admin.views.entry_span``); a missing end means it still goes on, drawn to ``now``.
Failed attempts come from ``inv["attempts"]`` (``{"attempt", "started_at", "ended_at",
"error", "outcome"}``): each failed attempt is a bar, and the wait after it (until the next
attempt started, or until the row's ``next_retry_at``) a backoff bar. Without them, the
row's last error and next retry time give one backoff bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Bar", "Timeline", "of_invocation", "of_tree", "parse_time", "cells"]

#: a bar is at least this wide (a fraction of the axis), so instant entries show
MIN_WIDTH = 0.004


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: ``start``/``end`` are fractions of the axis (0..1)."""

    label: str
    kind: str  # an entry kind, "backoff", or an invocation's status in a tree
    start: float
    end: float
    ms: float  # its length in milliseconds
    open: bool = False  # still going: drawn to now
    index: int | None = None  # the journal entry
    link: str | None = None  # an invocation it links to
    depth: int = 0
    note: str = ""


@dataclass(frozen=True, slots=True)
class Timeline:
    origin: datetime | None
    span_ms: float
    bars: tuple[Bar, ...]


def parse_time(text: str | None) -> datetime | None:
    """An API time (ISO with a Z) as a naive UTC datetime."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "")).replace(tzinfo=None)


_Raw = tuple[str, str, datetime, datetime, bool, dict[str, Any]]


def _layout(raw: list[_Raw], now: datetime) -> Timeline:
    if not raw:
        return Timeline(None, 0.0, ())
    origin = min(r[2] for r in raw)
    last = max(max(r[3] for r in raw), origin)
    span = max((last - origin).total_seconds() * 1000, 1.0)
    bars = []
    for label, kind, start, end, is_open, extra in raw:
        a = (start - origin).total_seconds() * 1000 / span
        b = (end - origin).total_seconds() * 1000 / span
        b = min(max(b, a + MIN_WIDTH), 1.0)
        a = min(a, 1.0 - MIN_WIDTH)
        ms = max((end - start).total_seconds() * 1000, 0.0)
        bars.append(Bar(label, kind, a, b, ms, is_open, **extra))
    return Timeline(origin, span, tuple(bars))


def of_invocation(inv: dict[str, Any], now: datetime) -> Timeline:
    """The journal's entries as bars, and the failed attempts' backoffs."""
    raw: list[_Raw] = []
    for e in inv.get("journal", []):
        start = parse_time(e.get("started_at"))
        if start is None:
            continue
        end = parse_time(e.get("ended_at"))
        is_open = end is None
        end = end or max(now, start)
        label = e["kind"] + (f" {e['name']}" if e.get("name") else "")
        extra = {"index": e["index"], "link": e.get("child_id")}
        if is_open and e.get("planned_end"):
            extra["note"] = "until " + e["planned_end"]
        raw.append((label, e["kind"], start, end, is_open, extra))
    raw.extend(_attempts(inv, now))
    return _layout(raw, now)


def _attempts(inv: dict[str, Any], now: datetime) -> list[_Raw]:
    out: list[_Raw] = []
    attempts = [a for a in inv.get("attempts") or [] if parse_time(a.get("ended_at"))]
    for i, a in enumerate(attempts):
        began = parse_time(a.get("started_at"))
        failed = parse_time(a.get("ended_at"))
        assert failed is not None
        error = str(a.get("error") or "").splitlines()[0] if a.get("error") else "failed"
        note = {"note": str(a.get("error") or "")[:200]}
        out.append(
            (
                f"attempt {a.get('attempt')}: {error}",
                "attempt",
                began or failed,
                failed,
                False,
                note,
            )
        )
        if a.get("outcome") != "backing-off":
            continue
        later = attempts[i + 1] if i + 1 < len(attempts) else None
        if later is not None:
            resumed, is_open = parse_time(later.get("started_at")) or failed, False
        else:
            retry = parse_time(inv.get("next_retry_at"))
            is_open = inv.get("status") == "backing-off"
            # killed or cancelled while waiting: the wait ended with the invocation
            ended = parse_time(inv.get("completed_at")) or failed
            resumed = retry if (is_open and retry) else max(ended, failed)
        out.append(
            (f"backoff after attempt {a.get('attempt')}", "backoff", failed, resumed, is_open, {})
        )
    if attempts:
        return out
    # the row alone: the last failure and the wait for the next attempt
    retry = parse_time(inv.get("next_retry_at"))
    failed = parse_time(inv.get("modified_at"))
    if inv.get("status") == "backing-off" and retry and failed and inv.get("last_error"):
        n = max(int(inv.get("attempt") or 1) - 1, 1)
        error = str(inv["last_error"]).splitlines()[0]
        out.append((f"attempt {n} failed: {error}", "backoff", failed, retry, True, {}))
    return out


def of_tree(tree: dict[str, Any], now: datetime) -> Timeline:
    """A call tree's invocations as bars, from creation to completion (or now)."""
    raw: list[_Raw] = []
    for n in tree.get("nodes", []):
        start = parse_time(n.get("created_at"))
        if start is None:
            continue
        end = parse_time(n.get("completed_at"))
        is_open = end is None
        end = end or max(now, start)
        label = f"{n['service']}/{n['handler']}" + (f" {n['key']}" if n.get("key") else "")
        via = "" if n["via"] == "root" else f"{n['via']} from entry {n['entry']}"
        extra = {"link": n["id"], "depth": n["depth"], "note": via}
        raw.append((label, n["status"], start, end, is_open, extra))
    return _layout(raw, now)


def cells(bar: Bar, width: int) -> tuple[int, int]:
    """Where a bar starts and how long it is, in ``width`` character cells (at least 1)."""
    a = min(int(bar.start * width), width - 1)
    b = max(round(bar.end * width), a + 1)
    return a, min(b, width) - a
