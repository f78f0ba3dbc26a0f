"""Pending awakeables and workflow promises: resolve or reject one by hand."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer

from ..format import count
from ..widgets import ConnectionBanner, PendingTable, TopBar
from .base import LiveScreen
from .dialogs import RejectDialog, ResolveDialog
from .invocation import InvocationScreen

__all__ = ["AwakeablesScreen"]


class AwakeablesScreen(LiveScreen):
    """What invocations wait on that a person (or another system) completes."""

    BINDINGS = [
        Binding(
            "enter", "resolve", "Resolve", priority=True, tooltip="Resolve it with a JSON value"
        ),
        Binding("x", "reject", "Reject", tooltip="Reject it with an error"),
        Binding("o", "open", "Open invocation", tooltip="The invocation that waits"),
    ]

    def compose(self) -> ComposeResult:
        yield TopBar("awakeables")
        yield ConnectionBanner()
        yield PendingTable(id="pending")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(PendingTable)
        table.border_title = "Pending awakeables and promises"
        table.focus()

    async def load(self) -> None:
        body = await self.app.api.pending()
        items = [*body.get("awakeables", []), *body.get("promises", [])]
        table = self.query_one(PendingTable)
        table.show(items)
        n_awk, n_prom = len(body.get("awakeables", [])), len(body.get("promises", []))
        table.border_subtitle = f"{count(n_awk, 'awakeable')} · {count(n_prom, 'promise')}"
        self._selection_changed()

    @property
    def selected(self) -> dict[str, Any] | None:
        tables = self.query(PendingTable)  # none while the screen is taken down
        return tables.first().selected if tables else None

    def _done(self, verb: str, item: dict[str, Any]) -> Any:
        def done(result: Any) -> None:
            if result is None:
                return
            what = item.get("name") or item["id"]
            self.app.add_log(f"{verb} {what} (invocation {item.get('invocation_id')})", "tui")
            self.notify(f"{verb} {what}", title=verb.capitalize(), markup=False)
            self.reload()

        return done

    @on(DataTable.RowSelected, "#pending")
    def _row_selected(self) -> None:
        self.action_resolve()

    @on(DataTable.RowHighlighted, "#pending")
    def _selection_changed(self) -> None:
        self.bindings_depend_on(self.selected is not None)

    # -- actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("resolve", "reject", "open"):
            return self.selected is not None or None
        return True

    def action_resolve(self) -> None:
        item = self.selected
        if item is not None:

            async def run(text: str) -> Any:
                return await self.app.api.resolve(item, text)

            self.app.push_screen(ResolveDialog(item, run), self._done("resolved", item))

    def action_reject(self) -> None:
        item = self.selected
        if item is not None:

            async def run(message: str, code: int) -> Any:
                return await self.app.api.reject(item, message, code)

            self.app.push_screen(RejectDialog(item, run), self._done("rejected", item))

    def action_open(self) -> None:
        item = self.selected
        if item is not None and item.get("invocation_id"):
            self.app.push_screen(InvocationScreen(item["invocation_id"]))
