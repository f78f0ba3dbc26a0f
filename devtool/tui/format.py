"""How the TUI shows ids, times, statuses and JSON values."""

from __future__ import annotations

import json
from typing import Any

from rich.console import RenderableType
from rich.json import JSON
from rich.text import Text

__all__ = [
    "STATUS_STYLE",
    "status_text",
    "short_id",
    "target",
    "clock",
    "stamp",
    "one_line",
    "json_view",
    "count",
]

# Hex colours: valid in Rich (table cells) and in Textual markup (chips), any theme.
STATUS_STYLE = {
    "pending": "#d7af00",
    "scheduled": "#00afaf",
    "ready": "#5fafff",
    "running": "bold #5f87ff",
    "suspended": "#af87ff",
    "backing-off": "bold #ffaf00",
    "paused": "bold #ff5f5f",
    "completed": "#5faf5f",
    "killed": "#d75f5f",
    "cancelled": "#af875f",
    "failed": "bold #ff5f5f",
}


def status_text(status: str, failure: Any = None) -> Text:
    """The status coloured; a failed invocation with its code."""
    if status == "failed" and failure:
        return Text(f"failed {failure.get('code', '')}".strip(), style=STATUS_STYLE["failed"])
    return Text(status, style=STATUS_STYLE.get(status, ""))


def short_id(inv_id: str | None, width: int = 12) -> str:
    """``inv_…`` and the last characters (the random part: what tells ids apart)."""
    if not inv_id:
        return ""
    if len(inv_id) <= width:
        return inv_id
    return "…" + inv_id[-(width - 1) :]


def target(item: dict[str, Any]) -> str:
    """``Service/handler`` and the key in brackets, when it has one."""
    key = item.get("key")
    return f"{item.get('service')}/{item.get('handler')}" + (f" [{key}]" if key else "")


def clock(iso: str | None) -> str:
    """``HH:MM:SS`` of an ISO time from the API (UTC)."""
    if not iso:
        return ""
    return iso.partition("T")[2][:8]


def stamp(iso: str | None) -> str:
    """``YYYY-MM-DD HH:MM:SS.mmm`` of an ISO time from the API (UTC)."""
    if not iso:
        return ""
    return iso.replace("T", " ").rstrip("Z")[:23]


def one_line(value: Any, width: int = 60) -> str:
    """A JSON value on one line, cut to ``width``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def json_view(value: Any) -> RenderableType:
    """A JSON value pretty-printed and highlighted."""
    return JSON.from_data(value, indent=2, ensure_ascii=False, sort_keys=False)


def count(n: int, word: str, plural: str | None = None) -> str:
    """``1 awakeable``, ``2 awakeables``."""
    return f"{n} {word if n == 1 else plural or word + 's'}"
