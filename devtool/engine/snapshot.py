"""A snapshot of the engine's memory for readers (the admin API, the dashboard)."""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from durable.messages import JournalEntry

from ..lifecycle import Status
from ..store.ops import InvocationRow

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["Snapshot"]


@dataclass(frozen=True)
class Snapshot:
    """What the engine holds, taken on the event loop (readers use it on their thread).

    ``rows``: the live row of every invocation held whole; ``suspended``: the ids of the
    suspended ones (membership tests only); ``key_owner``: which invocation holds each
    object key; ``journals``: the live journal of the invocation asked for.
    """

    rows: Mapping[str, InvocationRow] = field(default_factory=dict)
    suspended: Container[str] = frozenset()
    key_owner: Mapping[tuple[str, str], str] = field(default_factory=dict)
    journals: Mapping[str, list[JournalEntry]] = field(default_factory=dict)
    queue_position: Callable[[str], int | None] | None = None
    app_error: str | None = None  # why no worker runs: the app fails to load
    app_error_since: datetime | None = None

    @classmethod
    def of(cls, engine: Engine, journal_of: str | None = None) -> Snapshot:
        """``engine.snapshot(journal_of)`` (call it on the loop)."""
        return engine.snapshot(journal_of)

    def status(self, row: InvocationRow) -> str:
        """The status to show: the engine's when it holds the invocation, else the row's."""
        return self.status_of(row.id, row.status)

    def status_of(self, inv_id: str, stored: str) -> str:
        live = self.rows.get(inv_id)
        if live is not None:
            return live.status
        if inv_id in self.suspended:
            return Status.SUSPENDED.value
        return stored
