"""Errors that handler code sees and raises.

The tree::

    Exception
    ├── TerminalError            fails the invocation for good (no retry)
    │   ├── CancelledError       the invocation was cancelled (status 409)
    │   └── DurableTimeoutError  a durable await ran past its timeout (status 408)
    ├── RetryableError           retried, after ``retry_after`` when given (restate's)
    ├── NonDeterminismError      replay asked for a different step than the journal holds
    └── InvalidUsageError        the SDK was used in a way that cannot work
    BaseException
    └── SuspendedError           internal: the handler is being suspended; never catch it

Names follow restate-sdk-python, so ``from durable.exceptions import TerminalError``
replaces ``from restate.exceptions import TerminalError``.
"""

from __future__ import annotations

from datetime import timedelta

__all__ = [
    "TerminalError",
    "CancelledError",
    "DurableTimeoutError",
    "NonDeterminismError",
    "RetryableError",
    "InvalidUsageError",
    "SuspendedError",
]


class TerminalError(Exception):
    """An error that fails the invocation for good, without retries.

    Raise it from a handler (or from a ``ctx.run`` body) when retrying cannot help, for
    example when the input is invalid. The caller receives ``status_code`` and
    ``message``.

    Args:
        message: What went wrong, shown to the caller and in the dashboard.
        status_code: An HTTP-like status code; 500 by default.

    Example:
        >>> raise TerminalError("order 42 does not exist", status_code=404)
    """

    def __init__(
        self, message: str, status_code: int = 500, metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.metadata = metadata  # restate's; kept on the error, not journaled

    def __repr__(self) -> str:
        return f"TerminalError({self.message!r}, status_code={self.status_code})"


class CancelledError(TerminalError):
    """The invocation was cancelled; raised at the handler's next durable await.

    Catch it (or ``TerminalError``) to run compensations, then re-raise.
    """

    def __init__(self, message: str = "the invocation was cancelled") -> None:
        super().__init__(message, status_code=409)


class DurableTimeoutError(TerminalError):
    """A durable await did not complete in time (``with_timeout``); status 408.

    The timeout is a durable timer raced against the awaited future, so on replay the
    same await times out again. Catch it to take another path; the awaited operation
    itself is not cancelled (a call keeps running, an awakeable can still be resolved).
    """

    def __init__(self, message: str = "timed out") -> None:
        super().__init__(message, status_code=408)


class RetryableError(Exception):
    """A failure to retry, as any other exception; ``retry_after`` sets the delay before
    the next attempt instead of the retry policy's (restate-sdk-python 1.3's name).

    Args:
        message: What went wrong.
        status_code: An HTTP-like status code (500).
        retry_after: The delay before the next attempt (default: the retry policy's).
    """

    def __init__(
        self, message: str, status_code: int = 500, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after


class NonDeterminismError(Exception):
    """Replay asked for a different step than the one recorded in the journal.

    The invocation is paused instead of being retried blindly: fix the code (or restart
    the invocation from the diverging entry) and resume it.
    """

    def __init__(self, index: int, recorded: str, requested: str, location: str | None) -> None:
        self.index = index
        self.recorded = recorded
        self.requested = requested
        self.location = location
        where = f" at {location}" if location else ""
        super().__init__(
            f"non-deterministic replay at journal entry {index}: the journal recorded "
            f"{recorded}, but the code now asks for {requested}{where}. Handler code must "
            "make the same durable calls in the same order on every run; move "
            "non-deterministic logic into ctx.run, or restart the invocation from "
            f"entry {index}."
        )


class InvalidUsageError(Exception):
    """The SDK was used in a way that cannot work (a bug in the handler code)."""


class SuspendedError(BaseException):
    """Raised inside a handler that is being suspended while it awaits a completion.

    It derives from ``BaseException`` so that ``except Exception`` in handler code does
    not swallow it. If you see it, a ``try`` block catches ``BaseException``: let this
    error propagate.
    """
