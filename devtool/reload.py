"""What the file watcher reacts to: Python sources of the app, not caches or stores."""

from __future__ import annotations

from watchfiles import Change, DefaultFilter

__all__ = ["watch_filter"]

_filter = DefaultFilter(
    ignore_dirs=(
        ".durable",
        "__pycache__",
        ".git",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "node_modules",
        ".tox",
    )
)


def watch_filter(change: Change, path: str) -> bool:
    return _filter(change, path) and path.endswith((".py", ".toml"))
