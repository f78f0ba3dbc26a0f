"""Bars on one time axis in box characters: an invocation's entries, or a call tree's
invocations (see :mod:`durable.devtool.timeline`), one row each."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from ...timeline import Bar, Timeline, cells

__all__ = ["TimelineTable", "bar_text"]

_STYLE = {
    "run": "#5f87ff",
    "sleep": "#af87ff",
    "awakeable": "#af87ff",
    "call": "#af87ff",
    "one_way_call": "#af87ff",
    "get_promise": "#af87ff",
    "attempt": "#ff5f5f",
    "backoff": "#ff5f5f",
    "completed": "#5faf5f",
    "killed": "#ff5f5f",
    "cancelled": "#d7af00",
    "paused": "#ff5f5f",
}


def bar_text(bar: Bar, width: int) -> Text:
    """The bar drawn in ``width`` cells: ``█`` over a dim ``─`` track (``▒`` still going)."""
    start, length = cells(bar, width)
    style = _STYLE.get(bar.kind, "#8a8a8a")
    text = Text("─" * start, style="#3a3a3a")
    text.append(("▒" if bar.open else "█") * length, style=style)
    text.append("─" * (width - start - length), style="#3a3a3a")
    return text


def _ms(ms: float) -> str:
    if ms < 1:
        return "0" if ms == 0 else "<1ms"
    if ms < 1000:
        return f"{ms:.0f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    return f"{ms / 60_000:.1f}m"


class TimelineTable(DataTable):
    """One row a bar: label, the bar, its length; the row's key is its link or index."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.bars: tuple[Bar, ...] = ()
        self._shown: object = None
        self.bars_shown_before = False

    def on_mount(self) -> None:
        self.add_column("what", key="what")
        self.add_column("time", key="bar")
        self.add_column("took", key="ms")

    @property
    def selected(self) -> Bar | None:
        if not self.bars or not 0 <= self.cursor_row < len(self.bars):
            return None
        return self.bars[self.cursor_row]

    def show(self, tl: Timeline, label_width: int = 26, cursor_on: str | None = None) -> None:
        """Draw ``tl`` (unchanged: nothing to do); the first time, the cursor goes to the
        bar linking to ``cursor_on``."""
        width = max((self.size.width or self.app.size.width) - label_width - 14, 10)
        shown = (tl, width)
        if shown == self._shown:  # an unchanged poll keeps the cursor and costs nothing
            return
        self._shown = shown
        row = self.cursor_row
        self.clear()
        self.bars = tl.bars
        for i, b in enumerate(tl.bars):
            label = ("  " * b.depth) + (f"{b.index} " if b.index is not None else "") + b.label
            if len(label) > label_width:
                label = label[: label_width - 1] + "…"
            took = _ms(b.ms) + ("…" if b.open else "")
            self.add_row(Text(label.ljust(label_width)), bar_text(b, width), Text(took), key=str(i))
        if cursor_on is not None and not self.bars_shown_before:
            row = next((i for i, b in enumerate(tl.bars) if b.link == cursor_on), row)
        self.bars_shown_before = bool(tl.bars)
        if tl.bars:
            self.move_cursor(row=min(row, len(tl.bars) - 1), animate=False)
