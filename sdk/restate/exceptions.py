"""restate.exceptions, on durable's error classes."""

from __future__ import annotations

from datetime import timedelta

from durable.exceptions import SuspendedError, TerminalError

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


class RetryableError(Exception):
    """A failure to retry (as any other exception), optionally after ``retry_after``."""

    def __init__(
        self, message: str, status_code: int = 500, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after


def is_internal_exception(e: BaseException) -> bool:
    """Whether ``e`` is the SDK's own (suspension): re-raise it, never handle it."""
    return isinstance(e, SuspendedError)
