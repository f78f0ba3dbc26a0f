"""restate.logging: a logger quiet while the handler replays."""

from __future__ import annotations

from durable.logging import ReplayFilter as RestateLoggingFilter
from durable.logging import getLogger, restate_context_is_replaying

__all__ = ["getLogger", "RestateLoggingFilter", "restate_context_is_replaying"]
