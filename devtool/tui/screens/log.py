"""The log view: everything the log panel has, full screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from ..widgets import ConnectionBanner, LogPanel, TopBar

__all__ = ["LogScreen"]


class LogScreen(Screen):
    """The runtime's reload events, failures, what handlers printed or logged (and the
    worker's other output), and the TUI's notes."""

    def compose(self) -> ComposeResult:
        yield TopBar("log")
        yield ConnectionBanner()
        yield LogPanel(id="full-log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        log = self.query_one(LogPanel)
        log.border_title = "log: reloads, errors, what handlers printed or logged"
        log.focus()
