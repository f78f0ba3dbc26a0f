"""Errors of the runtime and dev tool.

The tree::

    DevtoolError                 a problem the user can act on; printed without a stack
    ├── StoreLockedError         another process holds the store file
    ├── StoreOpenError           the store cannot be opened (permission, not a store, damaged)
    │   └── StoreDamagedError    the operation log is damaged: starting would lose writes
    ├── AppLoadError             the app could not be imported or defines bad services
    └── RequestError             a request the runtime refuses (carries an HTTP status)
        ├── NotFound             404 unknown service, handler, invocation, awakeable
        ├── BadRequest           400 malformed JSON, wrong input, bad id
        ├── Conflict             409 workflow already ran, awakeable already completed
        ├── PayloadTooLarge      413 body over the limit
        └── Unavailable          503 no worker can run it (the app failed to load)
            └── StoreDegraded    503 the store cannot take writes now (disk full, damage)
"""

from __future__ import annotations

__all__ = [
    "DevtoolError",
    "StoreLockedError",
    "StoreOpenError",
    "StoreDamagedError",
    "StoreDegraded",
    "AppLoadError",
    "RequestError",
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


class StoreOpenError(DevtoolError):
    """The store file cannot be opened; the message names the cause and what to do."""


class StoreDamagedError(StoreOpenError):
    """The operation log holds bad bytes followed by intact records: recovering would drop
    acknowledged writes, so the store is not opened (see ``durable store check``)."""


class AppLoadError(DevtoolError):
    """The app could not be imported, or it defines invalid services."""


class RequestError(DevtoolError):
    """A request the runtime refuses; ``status`` is the HTTP status to answer."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(RequestError):
    status = 404


class BadRequest(RequestError):
    status = 400


class Conflict(RequestError):
    status = 409


class PayloadTooLarge(RequestError):
    status = 413


class Unavailable(RequestError):
    status = 503


class StoreDegraded(Unavailable):
    """The store takes no new work until a persistent failure clears (it retries)."""
