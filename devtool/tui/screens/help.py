"""``?``: every key binding of every view and dialog, from their BINDINGS."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from .awakeables import AwakeablesScreen
from .dialogs import ConfirmDialog, RestartDialog
from .invocation import InvocationScreen
from .invocations import InvocationsScreen
from .state import StateScreen

__all__ = ["HelpScreen"]

_NOTES = {
    "Invocations": [
        ("type", "in the filter: Order, Order/process, key:o1, since:10m, until:…, an id part"),
        ("↑ ↓ pgup pgdn", "move in the table (the mouse works too)"),
    ],
    "Invocation": [("↑ ↓", "step through the journal; the state panel follows")],
    "State": [("↑ ↓ enter", "move; enter expands a service into its keys")],
    "Dialogs": [("tab", "next field or button"), ("enter", "press the focused button or submit")],
}


def _only_bindings(items: Iterable[object]) -> list[Binding]:
    # every BINDINGS here is made of Binding objects (textual also allows tuples)
    return [b for b in items if isinstance(b, Binding)]


class HelpScreen(ModalScreen[None]):
    """Every key, grouped by where it works."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Label("Keys (escape closes; ctrl+p runs any of these by name)", id="dialog-title")
            with VerticalScroll(id="dialog-scroll"):
                yield Static(self._table(), id="help-keys")

    def _groups(self) -> list[tuple[str, list[Binding]]]:
        return [
            ("Everywhere", _only_bindings(self.app.BINDINGS)),
            ("Invocations", _only_bindings(InvocationsScreen.BINDINGS)),
            ("Invocation", _only_bindings(InvocationScreen.BINDINGS)),
            ("Awakeables", _only_bindings(AwakeablesScreen.BINDINGS)),
            ("State", _only_bindings(StateScreen.BINDINGS)),
            ("Dialogs", _only_bindings([*ConfirmDialog.BINDINGS, *RestartDialog.BINDINGS[:1]])),
            ("Resolve dialog", [Binding("enter", "", "Resolve (the value must be JSON)")]),
        ]

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for group, bindings in self._groups():
            table.add_row(Text(group, style="bold underline"), "")
            seen = set()
            for b in bindings:
                if not isinstance(b, Binding) or not b.description:
                    continue
                keys = b.key_display or ", ".join(
                    self.app.get_key_display(Binding(k, b.action)) for k in b.key.split(",")
                )
                if (keys, b.description) in seen:
                    continue
                seen.add((keys, b.description))
                text = b.description + (f": {b.tooltip}" if b.tooltip else "")
                table.add_row(keys, text)
            for keys, text in _NOTES.get(group, []):
                table.add_row(keys, Text(text, style="dim"))
            table.add_row("", "")
        return table
