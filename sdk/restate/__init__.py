"""restate-sdk-python's API on durable: what ``import restate`` gives under ``durable dev``.

The names of ``restate/__init__.py`` (restate-sdk 1.3), each bound to durable's own
implementation; the submodules of this package carry the names of restate's modules.
``durable.restate_alias`` maps ``restate`` here. Differences: ``docs/restate-compat.md``.
"""

from __future__ import annotations

from durable.combinators import as_completed, gather, select, wait_completed
from durable.context import (
    Context,
    DurablePromise,
    ObjectContext,
    ObjectSharedContext,
    RunOptions,
    SendHandle,
    WorkflowContext,
    WorkflowSharedContext,
)
from durable.definitions import Service, VirtualObject, Workflow

from . import logging
from ._unsupported import (
    ConnectError,
    connect,
    create_client,
    create_test_harness,
    test_harness,
    with_connection,
)
from .client_types import HttpError, RestateClient, RestateClientSendHandle
from .context import (
    RestateDurableCallFuture,
    RestateDurableFuture,
    RestateDurableSleepFuture,
    ScopedContext,
)
from .endpoint import app
from .entry_codec import JournalValueCodec, JournalValueCodecProvider
from .exceptions import SdkInternalBaseException, TerminalError, is_internal_exception
from .logging import RestateLoggingFilter, getLogger
from .retry_policy import InvocationRetryPolicy
from .types import HarnessEnvironment

__all__ = [
    "Service",
    "VirtualObject",
    "Workflow",
    "Context",
    "ObjectContext",
    "ObjectSharedContext",
    "WorkflowContext",
    "WorkflowSharedContext",
    "DurablePromise",
    "RestateDurableFuture",
    "RestateDurableCallFuture",
    "RestateDurableSleepFuture",
    "SendHandle",
    "ScopedContext",
    "RunOptions",
    "TerminalError",
    "JournalValueCodec",
    "JournalValueCodecProvider",
    "app",
    "connect",
    "with_connection",
    "ConnectError",
    "create_test_harness",
    "test_harness",
    "HarnessEnvironment",
    "gather",
    "as_completed",
    "wait_completed",
    "select",
    "logging",
    "RestateLoggingFilter",
    "InvocationRetryPolicy",
    "SdkInternalBaseException",
    "is_internal_exception",
    "getLogger",
    "RestateClient",
    "RestateClientSendHandle",
    "HttpError",
    "create_client",
]
