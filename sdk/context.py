"""The handler-facing API, as abstract classes.

Handlers receive a :class:`Context` (services), :class:`ObjectContext` /
:class:`ObjectSharedContext` (virtual objects) or :class:`WorkflowContext` /
:class:`WorkflowSharedContext` (workflows). The implementation lives in
:mod:`durable.executor`; these classes only define what handler code may call, with the
names and signatures of restate-sdk-python.
"""

from __future__ import annotations

import abc
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from .serde import Serde

__all__ = [
    "Context",
    "ObjectContext",
    "ObjectSharedContext",
    "WorkflowContext",
    "WorkflowSharedContext",
    "DurableFuture",
    "RunOptions",
    "SendHandle",
    "DurablePromise",
    "Request",
    "CallFuture",
    "SleepFuture",
    "AttemptFinishedEvent",
    "KeyValueStore",
    "ScopedContext",
]

T = TypeVar("T")


@dataclass(frozen=True)
class RunOptions(Generic[T]):
    """Retry policy and serialization of one ``ctx.run_typed`` action (restate's fields).

    Without ``max_attempts`` and ``max_duration``, a failing body fails the whole
    attempt, and the invocation is retried by its retry policy (replaying what was
    recorded). With either set, the body is retried in place; when they are used up
    the failure is recorded and raised as a :class:`TerminalError`.

    Args:
        serde: Serializer of the result (JSON by the type, by default).
        type_hint: Type of the result; default: the action's return annotation.
        max_attempts: Attempts of the body (the first included) before it fails for good.
        max_duration: Time budget for retries before it fails for good.
        initial_retry_interval: First delay between attempts (50 ms).
        max_retry_interval: Upper bound of the delay (10 s).
        retry_interval_factor: Multiplier of the delay after each attempt (2).
        max_retry_duration: Deprecated name of ``max_duration`` (as in restate).
    """

    serde: Serde[Any] | None = None
    type_hint: Any = None
    max_attempts: int | None = None
    max_duration: timedelta | None = None
    initial_retry_interval: timedelta | None = None
    max_retry_interval: timedelta | None = None
    retry_interval_factor: float | None = None
    max_retry_duration: timedelta | None = None

    @property
    def retry_budget(self) -> timedelta | None:
        """``max_duration``, or the deprecated ``max_retry_duration``."""
        return self.max_duration if self.max_duration is not None else self.max_retry_duration


class AttemptFinishedEvent(abc.ABC):
    """Set when the current attempt ends (restate's name): release attempt resources."""

    @abc.abstractmethod
    def is_set(self) -> bool:
        """Whether the attempt has finished."""

    @abc.abstractmethod
    async def wait(self) -> None:
        """Wait until the attempt has finished."""


@dataclass(frozen=True)
class Request:
    """The invocation's request: its id, headers and raw JSON body.

    Attributes:
        id: The invocation id.
        headers: The request's headers.
        body: The input as sent (JSON).
        attempt: The attempt number (1 for the first).
        attempt_headers: restate's per-attempt headers (the same as ``headers`` here).
        attempt_finished_event: Set when this attempt ends.
        idempotency_key: The idempotency key it was submitted with, if any.
        scope: restate's scope (always None: scopes are not supported).
        limit_key: restate's limit key (always None).
    """

    id: str
    headers: dict[str, str]
    body: bytes
    attempt: int = 1
    attempt_headers: dict[str, str] = field(default_factory=dict)
    attempt_finished_event: AttemptFinishedEvent | None = None
    idempotency_key: str | None = None
    scope: str | None = None
    limit_key: str | None = None


class DurableFuture(abc.ABC, Generic[T]):
    """A durable result: await it, or pass it to ``durable.gather/select``.

    Awaiting one that the runtime has not completed yet may suspend the handler; it
    resumes by replay when the result arrives.
    """

    @abc.abstractmethod
    def __await__(self) -> Generator[Any, None, T]: ...

    @abc.abstractmethod
    def done(self) -> bool:
        """Whether the result is already available."""

    def with_timeout(self, timeout: timedelta) -> Awaitable[T]:
        """Await this future, or raise ``DurableTimeoutError`` after ``timeout``.

        A durable timer raced against the future (see :func:`durable.with_timeout`).

        Example:
            >>> receipt = await ctx.service_call(charge, order).with_timeout(timedelta(minutes=5))
        """
        from .combinators import with_timeout

        return with_timeout(self, timeout)


class CallFuture(DurableFuture[T]):
    """The result of a durable call; it knows the callee's invocation id."""

    @abc.abstractmethod
    async def invocation_id(self) -> str:
        """The invocation id of the call."""

    @abc.abstractmethod
    async def cancel_invocation(self) -> None:
        """Cancel the called invocation (``ctx.cancel_invocation(await f.invocation_id())``).

        Awaiting the call afterwards raises the callee's ``CancelledError``.
        """


class SleepFuture(DurableFuture[None]):
    """A durable timer (``ctx.sleep``)."""


class SendHandle(abc.ABC):
    """Handle of a one-way send."""

    @abc.abstractmethod
    async def invocation_id(self) -> str:
        """The invocation id of the sent request."""

    @abc.abstractmethod
    async def cancel_invocation(self) -> None:
        """Cancel the sent invocation (await it, as in restate-sdk-python 1.3)."""


class DurablePromise(abc.ABC, Generic[T]):
    """A workflow's named durable promise (``ctx.promise(name)``)."""

    @abc.abstractmethod
    def value(self) -> DurableFuture[T]:
        """Wait for the promise's value; raises TerminalError if it was rejected."""

    @abc.abstractmethod
    def resolve(self, value: T) -> Awaitable[None]:
        """Resolve the promise (TerminalError if it was already completed)."""

    @abc.abstractmethod
    def reject(self, message: str, code: int = 500) -> Awaitable[None]:
        """Reject the promise (TerminalError if it was already completed)."""

    @abc.abstractmethod
    def peek(self) -> Awaitable[T | None]:
        """The value if the promise is resolved, None if it is not yet."""

    def __await__(self) -> Generator[Any, None, T]:
        """``await promise`` is ``await promise.value()`` (as in restate)."""
        return self.value().__await__()


class ScopedContext(abc.ABC):  # noqa: B024 (a type: no method is supported)
    """restate 1.3's ``ctx.scope(...)`` (a preview of Restate's flow control): durable
    does not support scopes, and ``ctx.scope()`` says so."""


class KeyValueStore(abc.ABC):
    """A key's durable state: what object and workflow contexts read and write."""

    @abc.abstractmethod
    def get(
        self, name: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> Awaitable[Any]:
        """The value of state entry ``name`` (None when unset)."""

    @abc.abstractmethod
    def state_keys(self) -> Awaitable[list[str]]:
        """The names of the state entries set for this key."""

    @abc.abstractmethod
    def set(self, name: str, value: Any, serde: Serde[Any] | None = None) -> None:
        """Set state entry ``name``; committed with the journal entry that made it."""

    @abc.abstractmethod
    def clear(self, name: str) -> None:
        """Remove state entry ``name``."""

    @abc.abstractmethod
    def clear_all(self) -> None:
        """Remove every state entry of this key."""


class Context(abc.ABC):
    """What every handler can do: journaled actions, timers, calls, awakeables."""

    @abc.abstractmethod
    def request(self) -> Request:
        """The invocation's request (id, headers, body)."""

    @abc.abstractmethod
    def run(
        self,
        name: str,
        action: Callable[..., T] | Callable[..., Awaitable[T]],
        *args: Any,
        serde: Serde[Any] | None = None,
        max_attempts: int | None = None,
        max_retry_duration: timedelta | None = None,
        type_hint: Any = None,
        **kwargs: Any,
    ) -> DurableFuture[T]:
        """Run a side effect once and journal its result.

        A sync ``action`` runs in a thread, an async one is awaited. Once the result is
        committed the action never runs again for this invocation: replays return the
        recorded result (or raise the recorded TerminalError).

        Args:
            name: A name for the step, shown in the journal; replay checks it.
            action: The function to run.
            *args: Arguments for ``action`` (restate's ``args=(...)`` works too).
            serde: Serializer of the result.
            max_attempts: Retry the body in place this many times, then fail for good.
            max_retry_duration: Retry the body in place for this long, then fail for good.
            type_hint: Type of the result, for deserialization on replay.

        Example:
            >>> paid = await ctx.run("charge", charge_card, order.id, amount)
        """

    @abc.abstractmethod
    def run_typed(
        self,
        name: str,
        action: Callable[..., T] | Callable[..., Awaitable[T]],
        options: RunOptions[T] | None = None,
        /,
        *args: Any,
        **kwargs: Any,
    ) -> DurableFuture[T]:
        """Like :meth:`run` with options gathered in a :class:`RunOptions`."""

    @abc.abstractmethod
    def sleep(self, delta: timedelta, name: str | None = None) -> DurableFuture[None]:
        """A durable timer: completes after ``delta``, across restarts.

        The handler suspends while it waits and costs nothing but a row.
        """

    @abc.abstractmethod
    def random(self) -> _random.Random:
        """A ``random.Random`` seeded from the invocation: the same on every replay."""

    @abc.abstractmethod
    def uuid(self) -> _uuid.UUID:
        """A UUID drawn from :meth:`random`: the same on every replay."""

    @abc.abstractmethod
    async def time(self) -> float:
        """The current time (seconds since the epoch), journaled: stable on replay."""

    @abc.abstractmethod
    def service_call(
        self,
        tpe: Any,
        arg: Any = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> CallFuture[Any]:
        """Call a service handler and get an awaitable of its result."""

    @abc.abstractmethod
    def object_call(
        self,
        tpe: Any,
        key: str,
        arg: Any = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> CallFuture[Any]:
        """Call a virtual object's handler for ``key``."""

    @abc.abstractmethod
    def workflow_call(
        self,
        tpe: Any,
        key: str,
        arg: Any = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> CallFuture[Any]:
        """Call a workflow's handler for workflow id ``key``."""

    @abc.abstractmethod
    def service_send(
        self,
        tpe: Any,
        arg: Any = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        """Send a one-way request to a service handler, optionally delayed."""

    @abc.abstractmethod
    def object_send(
        self,
        tpe: Any,
        key: str,
        arg: Any = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        """Send a one-way request to a virtual object's handler."""

    @abc.abstractmethod
    def workflow_send(
        self,
        tpe: Any,
        key: str,
        arg: Any = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        """Send a one-way request to a workflow's handler."""

    @abc.abstractmethod
    def generic_call(
        self,
        service: str,
        handler: str,
        arg: Any = None,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        scope: str | None = None,
        limit_key: str | None = None,
    ) -> CallFuture[Any]:
        """Call a handler by name (``arg`` as a value, or JSON ``bytes``)."""

    @abc.abstractmethod
    def generic_send(
        self,
        service: str,
        handler: str,
        arg: Any = None,
        key: str | None = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        scope: str | None = None,
        limit_key: str | None = None,
    ) -> SendHandle:
        """Send to a handler by name."""

    @abc.abstractmethod
    def awakeable(
        self, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> tuple[str, DurableFuture[Any]]:
        """A durable promise resolved from outside: ``(id, awaitable)``.

        Hand the id to another system; it resolves it with
        ``POST /restate/awakeables/{id}/resolve`` (or rejects with ``/reject``).
        """

    @abc.abstractmethod
    def resolve_awakeable(self, name: str, value: Any, serde: Serde[Any] | None = None) -> None:
        """Resolve another invocation's awakeable."""

    @abc.abstractmethod
    def reject_awakeable(self, name: str, failure_message: str, failure_code: int = 500) -> None:
        """Reject another invocation's awakeable."""

    @abc.abstractmethod
    def cancel_invocation(self, invocation_id: str) -> None:
        """Cancel another invocation: it sees a TerminalError at its next await."""

    @abc.abstractmethod
    def attach_invocation(
        self, invocation_id: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> DurableFuture[Any]:
        """Wait for another invocation's result."""

    @abc.abstractmethod
    def scope(self, scope: str) -> ScopedContext:
        """restate 1.3's flow-control scopes: not supported (raises TerminalError)."""

    @abc.abstractmethod
    def signal(self, name: str, serde: Serde[Any] | None = None, type_hint: Any = None) -> Any:
        """restate 1.3's named signals (a preview): not supported (raises TerminalError)."""

    @abc.abstractmethod
    def resolve_signal(
        self, invocation_id: str, name: str, value: Any, serde: Serde[Any] | None = None
    ) -> None:
        """restate 1.3's named signals (a preview): not supported (raises TerminalError)."""

    @abc.abstractmethod
    def reject_signal(
        self, invocation_id: str, name: str, failure_message: str, failure_code: int = 500
    ) -> None:
        """restate 1.3's named signals (a preview): not supported (raises TerminalError)."""


class ObjectSharedContext(Context):
    """Context of a shared virtual-object handler: reads state, never writes it."""

    @abc.abstractmethod
    def key(self) -> str:
        """The object's key."""

    @abc.abstractmethod
    def get(
        self, name: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> Awaitable[Any]:
        """The value of state entry ``name`` (None when unset)."""

    @abc.abstractmethod
    def state_keys(self) -> Awaitable[list[str]]:
        """The names of the state entries set for this key."""


class ObjectContext(ObjectSharedContext, KeyValueStore):
    """Context of an exclusive virtual-object handler: reads and writes state."""

    @abc.abstractmethod
    def set(self, name: str, value: Any, serde: Serde[Any] | None = None) -> None:
        """Set state entry ``name``; committed with the journal entry that made it."""

    @abc.abstractmethod
    def clear(self, name: str) -> None:
        """Remove state entry ``name``."""

    @abc.abstractmethod
    def clear_all(self) -> None:
        """Remove every state entry of this key."""


class WorkflowSharedContext(ObjectSharedContext):
    """Context of a workflow's shared handler: reads state, completes promises."""

    @abc.abstractmethod
    def promise(
        self, name: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> DurablePromise[Any]:
        """The workflow's durable promise ``name``."""


class WorkflowContext(ObjectContext, WorkflowSharedContext):
    """Context of a workflow's main handler."""
