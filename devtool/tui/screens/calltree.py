"""A whole call tree as one waterfall: the root caller of an invocation and every
invocation called or sent from it, each a bar from creation to completion."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from ...timeline import of_tree
from ..widgets import ConnectionBanner, TimelineTable, TopBar
from .base import LiveScreen

__all__ = ["CallTreeScreen"]


class CallTreeScreen(LiveScreen):
    """The call tree ``invocation_id`` belongs to; enter opens the selected invocation."""

    BINDINGS = [
        Binding("escape,backspace", "back", "Back", tooltip="Back to the invocation"),
        Binding("enter", "open", "Open", tooltip="Open the selected invocation"),
    ]

    def __init__(self, invocation_id: str) -> None:
        super().__init__()
        self.invocation_id = invocation_id

    def compose(self) -> ComposeResult:
        yield TopBar(self.app.current_mode)
        yield ConnectionBanner()
        yield Static(f"call tree of {self.invocation_id}", id="summary", markup=False)
        yield TimelineTable(id="tree")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(TimelineTable).border_title = "call tree (creation → completion)"
        self.query_one(TimelineTable).focus()

    async def load(self) -> None:
        tree = await self.app.api.tree(self.invocation_id)
        now = datetime.now(UTC).replace(tzinfo=None)
        n = len(tree["nodes"])
        text = Text.assemble(
            (f"call tree of {self.invocation_id}", "bold"),
            f"  {n} invocation{'s' if n != 1 else ''} from {tree['root']}",
        )
        if tree.get("note"):
            text.append("\n" + tree["note"], style="#d7af00")
        self.query_one("#summary", Static).update(text)
        table = self.query_one(TimelineTable)
        table.show(of_tree(tree, now), label_width=34, cursor_on=self.invocation_id)

    @on(DataTable.RowSelected, "#tree")
    def _row_selected(self) -> None:
        self.action_open()

    def action_back(self) -> None:
        self.dismiss()

    def action_open(self) -> None:
        bar = self.query_one(TimelineTable).selected
        if bar is not None and bar.link:
            from .invocation import InvocationScreen  # the two screens open each other

            self.app.push_screen(InvocationScreen(bar.link))
