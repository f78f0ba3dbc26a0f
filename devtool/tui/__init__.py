"""`durable tui`: the terminal UI over a runtime's admin API (see :mod:`.app`)."""

from __future__ import annotations

__all__ = ["run"]


def run(url: str, interval: float = 1.0) -> None:
    """Run the TUI against the runtime whose admin API is at ``url``."""
    from .app import TuiApp

    TuiApp(url, interval=interval).run()
