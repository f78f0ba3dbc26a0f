"""The TUI's widgets, by domain."""

from .chrome import ConnectionBanner, TopBar
from .invocation_table import InvocationTable, PendingTable
from .journal import EntryView, JournalTable, StatePanel
from .live_table import LiveTable
from .log_panel import LogPanel
from .status_chips import StatusChips
from .timeline import TimelineTable

__all__ = [
    "ConnectionBanner",
    "TopBar",
    "InvocationTable",
    "PendingTable",
    "LiveTable",
    "EntryView",
    "JournalTable",
    "StatePanel",
    "LogPanel",
    "StatusChips",
    "TimelineTable",
]
