"""The invocations view: a live table, a filter box, status toggles and the log."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import DataTable, Footer, Input, Label

from ..filters import KEY_NAMES, STATUS_KEYS, describe, parse_filter
from ..messages import StatusToggled
from ..widgets import ConnectionBanner, InvocationTable, LogPanel, StatusChips, TopBar
from .actions import allowed, confirm_action
from .base import LiveScreen
from .invocation import InvocationScreen

__all__ = ["InvocationsScreen"]

PAGE = 100


class InvocationsScreen(LiveScreen):
    """Invocations newest first, a page at a time; the newest page is live."""

    BINDINGS = [
        Binding("enter", "open", "Open", priority=True, tooltip="Show the journal and state"),
        Binding("slash", "filter", "Filter", key_display="/", tooltip="Type to filter"),
        Binding("c", "act('cancel')", "Cancel", tooltip="Cancel the invocation"),
        Binding("k", "act('kill')", "Kill", tooltip="Kill the invocation"),
        Binding("p", "act('pause')", "Pause", tooltip="Pause the invocation"),
        Binding("r", "act('resume')", "Resume", tooltip="Resume the invocation"),
        Binding("delete", "act('purge')", "Purge", show=False, tooltip="Delete a finished one"),
        Binding("right_square_bracket", "page('older')", "Older", key_display="]", show=False),
        Binding("left_square_bracket", "page('newer')", "Newer", key_display="[", show=False),
        Binding("g", "page('newest')", "Newest", show=False, tooltip="Back to the live page"),
        *(
            Binding(
                KEY_NAMES[key],
                f"toggle_status('{status}')",
                f"Status {status}",
                key_display=key,
                show=False,
            )
            for status, key in STATUS_KEYS.items()
        ),
        Binding("asterisk", "all_statuses", "All statuses", key_display="*", show=False),
        Binding("escape", "clear", "Clear filters", show=False),
    ]

    statuses: reactive[frozenset[str]] = reactive(frozenset())

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.after: str | None = None
        self.before: str | None = None
        self.page: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield TopBar("invocations")
        yield ConnectionBanner()
        with Horizontal(id="filter-row"):
            yield Label("/", id="filter-label")
            yield Input(
                placeholder="filter: Service[/handler] key:K since:10m or an id", id="filter"
            )
        yield StatusChips(id="chips")
        yield InvocationTable(id="invocations")
        yield LogPanel(id="log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(InvocationTable)
        table.border_title = "Invocations"
        self.query_one(LogPanel).border_title = "log"
        table.focus()

    # -- loading
    def params(self) -> dict[str, Any]:
        services = {
            n: [h["name"] for h in s.get("handlers", [])] for n, s in self.app.services.items()
        }
        params: dict[str, Any] = parse_filter(self.filter_text, services)
        if self.statuses:
            params["status"] = ",".join(s for s in STATUS_KEYS if s in self.statuses)
        params.update(limit=PAGE, count=1, after=self.after, before=self.before)
        return params

    async def load(self) -> None:
        params = self.params()
        page = await self.app.api.invocations(params)
        if self.before and not page["invocations"]:  # nothing newer: back to the live page
            self.before = None
            return await self.load()
        self.page = page
        table = self.query_one(InvocationTable)
        table.show(page["invocations"])
        shown = len(page["invocations"])
        where = "" if not (self.after or self.before) else " · older page (g: newest)"
        what = describe(
            {
                k: v
                for k, v in params.items()
                if k in ("service", "handler", "key", "id", "q", "since", "until")
            }
        )
        table.border_subtitle = (
            f"{shown} of {page.get('total', shown)}" + (f" · {what}" if what else "") + where
        )
        self._selection_changed()

    # -- handlers
    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.after = self.before = None
        self.reload()

    @on(DataTable.RowSelected, "#invocations")
    def _row_selected(self) -> None:  # a click on the highlighted row
        self.action_open()

    @on(DataTable.RowHighlighted, "#invocations")
    def _selection_changed(self) -> None:
        item = self.query_one(InvocationTable).selected
        self.bindings_depend_on(item and (item["id"], item["status"]))

    def on_status_toggled(self, message: StatusToggled) -> None:
        self.action_toggle_status(message.status)

    def watch_statuses(self, statuses: frozenset[str]) -> None:
        self.query_one(StatusChips).active = statuses
        self.after = self.before = None
        self.reload()

    # -- actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act":
            # the footer asks while the screen is being taken down too (no table then)
            tables = self.query(InvocationTable)
            item = tables.first().selected if tables else None
            return item is not None and allowed(str(parameters[0]), item) or None
        return True

    def action_open(self) -> None:
        table = self.query_one(InvocationTable)
        if not table.has_focus:  # enter in the filter box: to the table
            table.focus()
            return
        item = table.selected
        if item is not None:
            self.app.push_screen(InvocationScreen(item["id"]))

    def action_act(self, action: str) -> None:
        item = self.query_one(InvocationTable).selected
        if item is not None:
            confirm_action(self, item, action)

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_toggle_status(self, status: str) -> None:
        self.statuses = self.statuses ^ {status}

    def action_all_statuses(self) -> None:
        self.statuses = frozenset()

    def action_clear(self) -> None:
        field = self.query_one("#filter", Input)
        if field.has_focus and field.value:
            field.value = ""
            return
        field.value = ""
        self.statuses = frozenset()
        self.query_one(InvocationTable).focus()

    def action_page(self, where: str) -> None:
        if where == "older" and self.page.get("next"):
            self.after, self.before = self.page["next"], None
        elif where == "newer" and self.page.get("prev"):
            self.after, self.before = None, self.page["prev"]
        elif where == "newest":
            self.after = self.before = None
        else:
            return
        self.reload()
