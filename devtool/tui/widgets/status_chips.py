"""The status filters: one chip per status, toggled by its key or a click."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from ..filters import SHORT, STATUS_KEYS, STATUSES
from ..format import STATUS_STYLE
from ..messages import StatusToggled

__all__ = ["StatusChips"]


class StatusChips(Static):
    """``1 pend 2 sched …``: lit chips are the statuses shown (none lit: all)."""

    active: reactive[frozenset[str]] = reactive(frozenset(), layout=True)

    def on_resize(self) -> None:
        self.refresh()

    def render(self) -> str:
        wide = self.size.width >= 118
        parts = []
        for status in STATUSES:
            name = status if wide else SHORT[status]
            colour = STATUS_STYLE[status].split()[-1]
            if status in self.active:
                look = f"reverse {colour}"
            else:
                look = "dim" if self.active else colour
            parts.append(
                f"[@click=toggle_status('{status}')][b]{STATUS_KEYS[status]}[/b] [{look}]{name}[/][/]"
            )
        return " ".join(parts)

    def action_toggle_status(self, status: str) -> None:
        self.post_message(StatusToggled(status))
