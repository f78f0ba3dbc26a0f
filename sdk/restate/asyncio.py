"""restate.asyncio: the combinators over durable futures."""

from __future__ import annotations

from durable.combinators import as_completed, gather, select, wait_completed

__all__ = ["gather", "select", "as_completed", "wait_completed"]
