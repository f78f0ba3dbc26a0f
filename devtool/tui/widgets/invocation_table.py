"""The live list of invocations, and the list of pending awakeables and promises."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from ...lifecycle import TERMINAL
from ..format import clock, one_line, short_id, status_text, target
from .live_table import LiveTable

__all__ = ["InvocationTable", "PendingTable"]

_ERROR = "#ff5f5f"


class InvocationTable(LiveTable):
    """One page of invocations, newest first, keyed by id."""

    COLUMNS = (
        ("id", "id"),
        ("target", "service/handler [key]"),
        ("status", "status"),
        ("attempt", "try"),
        ("created", "created"),
        ("info", "waiting on / error"),
    )

    def cells(self, item: dict[str, Any]) -> tuple[Any, ...]:
        failure = item.get("failure")
        if item.get("last_error") and item["status"] not in TERMINAL:
            info = Text(one_line(item["last_error"], 80), style=_ERROR)
        elif failure:
            info = Text(one_line(failure.get("message"), 80), style=_ERROR)
        else:
            info = Text(one_line(item.get("waits_on"), 80), style="dim")
        attempt = item.get("attempt") or 1
        return (
            short_id(item["id"]),
            one_line(target(item), 40),
            status_text(item["status"], failure),
            str(attempt) if attempt > 1 else "",
            clock(item.get("created_at")),
            info,
        )


class PendingTable(LiveTable):
    """Pending awakeables and workflow promises, with the invocation waiting on each."""

    COLUMNS = (
        ("id", "awakeable / promise"),
        ("invocation", "waiting"),
        ("target", "service/handler [key]"),
        ("entry", "#"),
        ("status", "status"),
        ("since", "since"),
    )

    def cells(self, item: dict[str, Any]) -> tuple[Any, ...]:
        promise = "name" in item
        return (
            one_line(f"promise {item['name']!r}", 24) if promise else short_id(item["id"], 16),
            short_id(item.get("invocation_id")),
            one_line(target(item), 40),
            str(item.get("entry_index", "")),
            status_text(item.get("status", "")),
            clock(item.get("created_at")),
        )
