"""Errors of the runtime and dev tool.

The tree::

    DevtoolError                 a problem the user can act on; printed without a stack
    ├── StoreLockedError         another process holds the store file
    ├── AppLoadError             the app could not be imported or defines bad services
    └── IngressError             a request the runtime refuses (carries an HTTP status)
        ├── NotFound             404 unknown service, handler, invocation, awakeable
        ├── BadRequest           400 malformed JSON, wrong input, bad id
        ├── Conflict             409 workflow already ran, awakeable already completed
        ├── PayloadTooLarge      413 body over the limit
        └── Unavailable          503 no worker can run it (the app failed to load)
"""

from __future__ import annotations

__all__ = [
    "DevtoolError",
    "StoreLockedError",
    "AppLoadError",
    "IngressError",
    "NotFound",
    "BadRequest",
    "Conflict",
    "PayloadTooLarge",
    "Unavailable",
]


class DevtoolError(Exception):
    """A problem the user can act on; the message says what to do."""


class StoreLockedError(DevtoolError):
    """Another process holds the store file."""


class AppLoadError(DevtoolError):
    """The app could not be imported, or it defines invalid services."""


class IngressError(DevtoolError):
    """A request the runtime refuses; ``status`` is the HTTP status to answer."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(IngressError):
    status = 404


class BadRequest(IngressError):
    status = 400


class Conflict(IngressError):
    status = 409


class PayloadTooLarge(IngressError):
    status = 413


class Unavailable(IngressError):
    status = 503
