"""The TUI's screens: one per view (a Textual mode), the invocation, dialogs, help."""

from .awakeables import AwakeablesScreen
from .help import HelpScreen
from .invocation import InvocationScreen
from .invocations import InvocationsScreen
from .log import LogScreen
from .state import StateScreen

__all__ = [
    "AwakeablesScreen",
    "InvocationScreen",
    "InvocationsScreen",
    "LogScreen",
    "StateScreen",
    "HelpScreen",
]
