"""A logger for handlers that stays quiet while the handler replays.

``durable.getLogger()`` mirrors ``restate.getLogger()``: records emitted while the
handler is replaying recorded entries are dropped, so a replay does not repeat logs.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Protocol

__all__ = ["getLogger", "current_executor", "ReplayFilter", "restate_context_is_replaying"]


class _Replaying(Protocol):
    """What the filter asks of the running executor (durable.executor imports this module)."""

    @property
    def replaying(self) -> bool: ...


current_executor: contextvars.ContextVar[_Replaying | None] = contextvars.ContextVar(
    "durable_executor", default=None
)


class ReplayFilter(logging.Filter):
    """Drops records emitted while the handler replays (restate's RestateLoggingFilter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ex = current_executor.get()
        return ex is None or not ex.replaying


def getLogger(name: str | None = None) -> logging.Logger:  # restate's name
    """A logger that drops records while the handler is replaying."""
    logger = logging.getLogger(name or "durable.handler")
    if not any(isinstance(f, ReplayFilter) for f in logger.filters):
        logger.addFilter(ReplayFilter())
    return logger


class _IsReplaying:
    """restate's ``restate_context_is_replaying`` context variable, read-only: ``.get()``."""

    def get(self) -> bool:
        ex = current_executor.get()
        return ex is not None and ex.replaying


restate_context_is_replaying = _IsReplaying()
