"""durable: durable building blocks for Python handlers.

Handler code imports from here (``Service``, ``VirtualObject``, ``Workflow``, the
contexts, ``TerminalError``); the runtime that runs it is ``durable dev``. Importing this
package loads no database, web or terminal library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# The public names load on first use (PEP 562): the runtime imports ``durable.devtool``
# and the message modules, not the executor, contexts and combinators handlers use.
_LAZY = {
    **dict.fromkeys(
        ["as_completed", "gather", "select", "wait_completed", "with_timeout"], "combinators"
    ),
    **dict.fromkeys(
        [
            "Context",
            "DurableFuture",
            "DurablePromise",
            "ObjectContext",
            "ObjectSharedContext",
            "Request",
            "RunOptions",
            "SendHandle",
            "WorkflowContext",
            "WorkflowSharedContext",
        ],
        "context",
    ),
    **dict.fromkeys(
        ["RetryPolicy", "Service", "ServiceDef", "VirtualObject", "Workflow"], "definitions"
    ),
    **dict.fromkeys(
        ["CancelledError", "DurableTimeoutError", "NonDeterminismError", "TerminalError"],
        "exceptions",
    ),
    "getLogger": "logging",
    **dict.fromkeys(["JsonSerde", "Serde"], "serde"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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


class App(list["ServiceDef"]):
    """The services an app module serves (what ``durable.app([...])`` returns)."""


def app(services: list[ServiceDef] | None = None, **_restate_options: Any) -> App:
    """Declare the services an app module serves (like ``restate.app(services=[...])``).

    Discovery serves exactly these when a module defines one; otherwise it serves every
    service object found at module level.
    """
    return App(services or [])
