"""durable: durable building blocks for Python handlers.

Handler code imports from here (``Service``, ``VirtualObject``, ``Workflow``, the
contexts, ``TerminalError``); the runtime that runs it is ``durable dev``. Importing this
package loads no database, web or terminal library.
"""

from __future__ import annotations

from typing import Any

from .combinators import as_completed, gather, select, wait_completed, with_timeout
from .context import (
    Context,
    DurableFuture,
    DurablePromise,
    ObjectContext,
    ObjectSharedContext,
    Request,
    RunOptions,
    SendHandle,
    WorkflowContext,
    WorkflowSharedContext,
)
from .definitions import RetryPolicy, Service, ServiceDef, VirtualObject, Workflow
from .exceptions import CancelledError, DurableTimeoutError, NonDeterminismError, TerminalError
from .logging import getLogger
from .serde import JsonSerde, Serde

__all__ = [
    "Service",
    "VirtualObject",
    "Workflow",
    "ServiceDef",
    "RetryPolicy",
    "Context",
    "ObjectContext",
    "ObjectSharedContext",
    "WorkflowContext",
    "WorkflowSharedContext",
    "DurableFuture",
    "DurablePromise",
    "SendHandle",
    "Request",
    "RunOptions",
    "TerminalError",
    "CancelledError",
    "DurableTimeoutError",
    "NonDeterminismError",
    "Serde",
    "JsonSerde",
    "gather",
    "select",
    "wait_completed",
    "as_completed",
    "with_timeout",
    "getLogger",
    "app",
]

__version__ = "0.1.0"


class App(list[ServiceDef]):
    """The services an app module serves (what ``durable.app([...])`` returns)."""


def app(services: list[ServiceDef] | None = None, **_restate_options: Any) -> App:
    """Declare the services an app module serves (like ``restate.app(services=[...])``).

    Discovery serves exactly these when a module defines one; otherwise it serves every
    service object found at module level.
    """
    return App(services or [])
