"""The log panel: the runtime's reload events and errors, and what the TUI noticed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import getters
from textual.widgets import RichLog

from ..messages import LogLine

if TYPE_CHECKING:
    from ..app import TuiApp

__all__ = ["LogPanel"]

_LOOK = {"error": "#ff5f5f", "output": "dim", "log": "", "tui": "#5fafff", "info": ""}


class LogPanel(RichLog):
    """Follows the app's log (its ``log_signal``); shows what came before it too."""

    if TYPE_CHECKING:
        app = getters.app(TuiApp)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_lines=2000, wrap=True, markup=False, **kwargs)

    def on_mount(self) -> None:
        for line in self.app.log_lines:
            self.add(line)
        self.app.log_signal.subscribe(self, self.add)

    def add(self, line: LogLine) -> None:
        text = Text(f"{line.at} ", style="dim")
        text.append(line.message, style=_LOOK.get(line.level, ""))
        self.write(text)
