"""restate.context: the handler API (contexts, futures, options), bound to durable's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, Union

from durable.context import (
    AttemptFinishedEvent,
    CallFuture,
    Context,
    DurableFuture,
    DurablePromise,
    KeyValueStore,
    ObjectContext,
    ObjectSharedContext,
    Request,
    RunOptions,
    ScopedContext,
    SendHandle,
    SleepFuture,
    WorkflowContext,
    WorkflowSharedContext,
)

__all__ = [
    "RunOptions",
    "RestateDurableFuture",
    "RestateDurableCallFuture",
    "RestateDurableSleepFuture",
    "AttemptFinishedEvent",
    "Request",
    "KeyValueStore",
    "SendHandle",
    "ScopedContext",
    "Context",
    "ObjectContext",
    "ObjectSharedContext",
    "DurablePromise",
    "WorkflowContext",
    "WorkflowSharedContext",
    "HandlerType",
    "RunAction",
]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 (restate's name)
O = TypeVar("O")  # noqa: E741

RestateDurableFuture = DurableFuture
RestateDurableCallFuture = CallFuture
RestateDurableSleepFuture = SleepFuture

HandlerType = Union[Callable[[Any, I], Awaitable[O]], Callable[[Any], Awaitable[O]]]
RunAction = Union[Callable[..., Coroutine[Any, Any, T]], Callable[..., T]]
