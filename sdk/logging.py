"""A logger for handlers that stays quiet while the handler replays.

``durable.getLogger()`` mirrors ``restate.getLogger()``: records emitted while the
handler is replaying recorded entries are dropped, so a replay does not repeat logs.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Protocol

__all__ = ["getLogger", "current_executor"]


class _Replaying(Protocol):
    """What the filter asks of the running executor (durable.executor imports this module)."""

    @property
    def replaying(self) -> bool: ...


current_executor: contextvars.ContextVar[_Replaying | None] = contextvars.ContextVar(
    "durable_executor", default=None
)


class _ReplayFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ex = current_executor.get()
        return ex is None or not ex.replaying


def getLogger(name: str | None = None) -> logging.Logger:  # restate's name
    """A logger that drops records while the handler is replaying.

    Its level is INFO unless set otherwise, so ``log.info(...)`` in a handler shows in
    the ``durable dev`` console and is kept with the invocation.
    """
    logger = logging.getLogger(name or "durable.handler")
    if not any(isinstance(f, _ReplayFilter) for f in logger.filters):
        logger.addFilter(_ReplayFilter())
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return logger
