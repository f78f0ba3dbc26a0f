"""A table of rows keyed by id that a poll refreshes without flicker or a lost cursor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

__all__ = ["LiveTable"]


def _literal(cells: tuple[Any, ...]) -> tuple[Any, ...]:
    """Text cells shown as they are (a plain str cell would be read as markup: a key
    like ``[o1]`` would vanish)."""
    return tuple(Text(c) if isinstance(c, str) else c for c in cells)


class LiveTable(DataTable):
    """Subclasses name their ``COLUMNS`` (key, label) and turn an item into ``cells``."""

    COLUMNS: Sequence[tuple[str, str]] = ()

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self.items: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._cells: dict[str, tuple[Any, ...]] = {}

    def on_mount(self) -> None:
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)

    def cells(self, item: dict[str, Any]) -> tuple[Any, ...]:
        raise NotImplementedError

    @property
    def selected(self) -> dict[str, Any] | None:
        """The item under the cursor."""
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self.items.get(self._order[self.cursor_row])

    def show(self, items: list[dict[str, Any]], key: str = "id") -> None:
        """Show these items in this order; the cursor stays on the same item."""
        order = [i[key] for i in items]
        cells = {i[key]: _literal(self.cells(i)) for i in items}
        self.items = {i[key]: i for i in items}
        if order == self._order:  # the usual case: only cells change
            for row_key in order:
                old, new = self._cells[row_key], cells[row_key]
                for (column, _label), a, b in zip(self.COLUMNS, old, new, strict=True):
                    if a != b:
                        self.update_cell(row_key, column, b)
            self._cells = cells
            return
        selected = self._order[self.cursor_row] if self.selected is not None else None
        on_screen = self.cursor_row - round(self.scroll_y)  # the cursor's line in the view
        row = self.cursor_row
        with self.app.batch_update():
            self.clear()
            for row_key in order:
                self.add_row(*cells[row_key], key=row_key)
            self._order, self._cells = order, cells
            if selected in cells:
                row = order.index(selected)
            row = max(0, min(row, len(order) - 1))
            if order:
                self.move_cursor(row=row, animate=False, scroll=False)
                self.scroll_to(y=max(0, row - max(0, on_screen)), animate=False, immediate=True)
