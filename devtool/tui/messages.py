"""Messages between the TUI's widgets and screens (dataclasses, as Textual allows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

__all__ = ["StatusToggled", "OpenInvocation", "Acted", "LogLine"]


@dataclass
class StatusToggled(Message):
    """A status chip was clicked: show or hide invocations with this status."""

    status: str


@dataclass
class OpenInvocation(Message):
    """Show one invocation (its journal, state and actions)."""

    invocation_id: str


@dataclass
class Acted(Message):
    """An action on the runtime succeeded; what shows it should reload."""

    what: str
    result: Any = None


@dataclass(frozen=True)
class LogLine:
    """One line of the log panel (not a message: the app publishes it on a signal)."""

    at: str  # HH:MM:SS
    level: str  # info, error, output, tui
    message: str
