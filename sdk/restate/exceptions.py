"""restate.exceptions, on durable's error classes."""

from __future__ import annotations

from durable.exceptions import RetryableError, SuspendedError, TerminalError

__all__ = [
    "TerminalError",
    "RetryableError",
    "SdkInternalBaseException",
    "SuspendedException",
    "SdkInternalException",
    "is_internal_exception",
]

#: What the SDK raises through handler code to stop it; never catch it.
SdkInternalBaseException = SuspendedError
SuspendedException = SuspendedError
SdkInternalException = SuspendedError


def is_internal_exception(e: BaseException) -> bool:
    """Whether ``e`` is the SDK's own (suspension): re-raise it, never handle it."""
    return isinstance(e, SuspendedError)
