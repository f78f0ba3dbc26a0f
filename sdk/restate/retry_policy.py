"""restate.retry_policy: :class:`InvocationRetryPolicy`."""

from __future__ import annotations

from durable.definitions import InvocationRetryPolicy

__all__ = ["InvocationRetryPolicy"]
