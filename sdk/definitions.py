"""Service definitions: :class:`Service`, :class:`VirtualObject`, :class:`Workflow`.

A definition collects handlers with a decorator. The decorated function is returned
unchanged (with a ``__durable_handler__`` attribute), so it can be passed to
``ctx.service_call(fn, arg)`` and still be called directly in unit tests.
"""

from __future__ import annotations

import inspect
import typing
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypeVar

from .exceptions import InvalidUsageError
from .messages import HandlerInfo, ServiceInfo
from .serde import check_serde, inspect_empty, json_schema, type_name

__all__ = [
    "Service",
    "VirtualObject",
    "Workflow",
    "HandlerDef",
    "RetryPolicy",
    "InvocationRetryPolicy",
    "ServiceDef",
    "find_handler",
]

# a handler function: the decorators return it unchanged, so it keeps its own type
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class RetryPolicy:
    """How an invocation whose attempt failed is retried.

    Defaults suit development: the first retry comes fast, intervals grow by
    ``factor`` up to ``max_interval``, and after ``max_attempts`` the invocation is
    *paused* (kept with its error, resumable by hand or on reload), never dropped.

    Args:
        initial_interval: Delay before the second attempt.
        factor: Multiplier applied to the delay after each failed attempt.
        max_interval: Upper bound of the delay.
        max_attempts: Attempts before the invocation is paused (None: retry forever).
    """

    initial_interval: timedelta = timedelta(milliseconds=100)
    factor: float = 2.0
    max_interval: timedelta = timedelta(seconds=10)
    max_attempts: int | None = 10

    def __post_init__(self) -> None:
        for name in ("initial_interval", "max_interval"):
            value = getattr(self, name)
            if not isinstance(value, timedelta):
                raise TypeError(
                    f"RetryPolicy({name}={value!r}): give a timedelta, for example "
                    f"{name}=timedelta(milliseconds=100)"
                )
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(
                f"RetryPolicy(max_attempts={self.max_attempts}): give at least 1, or None to "
                "retry forever"
            )

    def delay(self, attempt: int) -> timedelta:
        """The delay after failed attempt number ``attempt`` (1-based)."""
        seconds = self.initial_interval.total_seconds() * (self.factor ** max(attempt - 1, 0))
        return timedelta(seconds=min(seconds, self.max_interval.total_seconds()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "initial_interval_ms": self.initial_interval.total_seconds() * 1000,
            "factor": self.factor,
            "max_interval_ms": self.max_interval.total_seconds() * 1000,
            "max_attempts": self.max_attempts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> RetryPolicy:
        if not d:
            return cls()
        return cls(
            initial_interval=timedelta(milliseconds=d["initial_interval_ms"]),
            factor=d["factor"],
            max_interval=timedelta(milliseconds=d["max_interval_ms"]),
            max_attempts=d["max_attempts"],
        )


@dataclass
class InvocationRetryPolicy:
    """restate-sdk-python's retry policy (``invocation_retry_policy=``), as a
    :class:`RetryPolicy`: unset fields take RetryPolicy's defaults.

    Args:
        initial_interval: Delay before the first retry.
        exponentiation_factor: Multiplier of the delay after each failed attempt.
        max_interval: Upper bound of the delay.
        max_attempts: Attempts (the first included) before giving up.
        on_max_attempts: ``"pause"`` (durable's and Restate's default) or ``"kill"``;
            durable pauses in both cases (a paused invocation can be killed by hand).
    """

    initial_interval: timedelta | None = None
    exponentiation_factor: float | None = None
    max_interval: timedelta | None = None
    max_attempts: int | None = None
    on_max_attempts: Literal["pause", "kill"] | None = None

    def to_retry_policy(self) -> RetryPolicy:
        d = RetryPolicy()
        return RetryPolicy(
            initial_interval=self.initial_interval or d.initial_interval,
            factor=self.exponentiation_factor or d.factor,
            max_interval=self.max_interval or d.max_interval,
            max_attempts=self.max_attempts if self.max_attempts is not None else d.max_attempts,
        )


def _policy(
    retry_policy: RetryPolicy | None, invocation_retry_policy: InvocationRetryPolicy | None
) -> RetryPolicy | None:
    if invocation_retry_policy is not None:
        if retry_policy is not None:
            raise InvalidUsageError("give retry_policy= or invocation_retry_policy=, not both")
        return invocation_retry_policy.to_retry_policy()
    return retry_policy


#: restate's service and handler keywords that concern a Restate server's operation
#: (timeouts, retention, lazy state, ingress visibility, metadata, content types): kept
#: on the definition (``restate_options``), not applied by durable dev; see
#: docs/restate-compat.md.
RESTATE_OPTIONS = frozenset(
    {
        "metadata",
        "inactivity_timeout",
        "abort_timeout",
        "journal_retention",
        "idempotency_retention",
        "enable_lazy_state",
        "state_preload",
        "ingress_private",
        "accept",
        "content_type",
    }
)


def _restate_options(where: str, options: dict[str, Any], depth: int = 3) -> dict[str, Any]:
    """restate's server keywords, checked; ``depth``: the user's frame, for warnings."""
    unknown = sorted(set(options) - RESTATE_OPTIONS)
    if unknown:
        raise TypeError(
            f"{where} got unexpected keyword argument(s) {', '.join(unknown)}: durable takes "
            f"restate-sdk-python's keywords ({', '.join(sorted(RESTATE_OPTIONS))}) and its own"
        )
    for k in ("accept", "content_type"):
        v = options.get(k)
        if v is not None and "json" not in v and v != "*/*":
            # said, not refused: the handler still works for JSON bodies (an app with one
            # such handler among many still runs)
            warnings.warn(
                f"{where}: {k}={v!r} is not applied: durable's ingress and journal carry "
                "JSON only, so this handler takes and gives JSON (a body that is not JSON "
                "answers 400)",
                RuntimeWarning,
                stacklevel=depth,
            )
    return {k: v for k, v in options.items() if v is not None}


HandlerKind = Literal["exclusive", "shared", "workflow", "service"]


@dataclass
class HandlerDef:
    """One handler of a service: its function, kind and types."""

    service: ServiceDef
    name: str
    fn: Callable[..., Awaitable[Any]]
    kind: HandlerKind
    arity: int
    input_type: Any
    output_type: Any
    retry_policy: RetryPolicy | None = None
    workflow_retention: timedelta | None = None
    input_serde: Any = None
    output_serde: Any = None
    context_managers: list[Callable[[], Any]] = field(default_factory=list)
    restate_options: dict[str, Any] = field(default_factory=dict)

    @property
    def service_name(self) -> str:
        return self.service.name

    def info(self) -> HandlerInfo:
        return HandlerInfo(
            name=self.name,
            kind=self.kind,
            input_type=type_name(self.input_type) if self.arity == 2 else "none",
            output_type=type_name(self.output_type),
            input_schema=json_schema(self.input_type) if self.arity == 2 else None,
            output_schema=json_schema(self.output_type),
            workflow_retention_s=(
                self.workflow_retention.total_seconds() if self.workflow_retention else None
            ),
        )

    def effective_retry_policy(self) -> RetryPolicy | None:
        return self.retry_policy or self.service.retry_policy


@dataclass
class ServiceDef:
    """Common base of Service, VirtualObject and Workflow."""

    name: str
    kind: Literal["service", "object", "workflow"] = "service"
    retry_policy: RetryPolicy | None = None
    description: str | None = None
    handlers: dict[str, HandlerDef] = field(default_factory=dict)
    context_managers: list[Callable[[], Any]] = field(default_factory=list)
    restate_options: dict[str, Any] = field(default_factory=dict)

    def _register(
        self,
        fn: H,
        name: str | None,
        kind: HandlerKind,
        retry_policy: RetryPolicy | None,
        options: dict[str, Any] | None = None,
    ) -> H:
        handler = fn  # the check below narrows fn to a coroutine function, not H
        if not inspect.iscoroutinefunction(fn):
            raise InvalidUsageError(
                f"handler {self.name}.{fn.__name__} must be an async function "
                "(async def name(ctx, arg) -> result)"
            )
        hname = name or fn.__name__
        if hname in self.handlers:
            raise InvalidUsageError(f"{self.name} defines handler {hname!r} twice")
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if len(params) not in (1, 2):
            raise InvalidUsageError(
                f"handler {self.name}.{hname} must take (ctx) or (ctx, arg), "
                f"not {len(params)} parameters"
            )
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except Exception:  # unresolvable forward references: fall back to plain JSON
            hints = {}
        input_type = hints.get(params[1].name, inspect_empty) if len(params) == 2 else None
        output_type = hints.get("return", inspect_empty)
        hdef = HandlerDef(
            service=self,
            name=hname,
            fn=fn,
            kind=kind,
            arity=len(params),
            input_type=input_type,
            output_type=output_type,
            retry_policy=retry_policy,
        )
        if options:
            _handler_options(hdef, dict(options))
        self.handlers[hname] = hdef
        # a function takes attributes; its type (H) does not say so
        handler.__durable_handler__ = hdef  # type: ignore[attr-defined]
        return handler

    def info(self) -> ServiceInfo:
        return ServiceInfo(
            name=self.name,
            kind=self.kind,
            handlers=tuple(h.info() for h in self.handlers.values()),
            retry_policy=self.retry_policy.to_dict() if self.retry_policy else None,
        )


class Service(ServiceDef):
    """A stateless service: a group of handlers that run concurrently.

    Example:
        >>> greeter = Service("Greeter")
        >>> @greeter.handler()
        ... async def greet(ctx: Context, name: str) -> str:
        ...     return f"Hello {name}!"
    """

    def __init__(
        self,
        name: str,
        *,
        retry_policy: RetryPolicy | None = None,
        description: str | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        invocation_context_managers: list[Callable[[], Any]] | None = None,
        **restate_options: Any,
    ) -> None:
        super().__init__(
            name=name,
            kind="service",
            retry_policy=_policy(retry_policy, invocation_retry_policy),
            description=description,
            context_managers=list(invocation_context_managers or []),
            restate_options=_restate_options(f"Service({name!r})", restate_options),
        )

    def handler(
        self,
        name: str | None = None,
        *,
        retry_policy: RetryPolicy | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        **options: Any,
    ) -> Callable[[H], H]:
        """Register an ``async def handler(ctx)`` or ``(ctx, arg)`` function.

        Also takes restate's handler keywords: ``input_serde=``/``output_serde=``,
        ``invocation_context_managers=`` and the server options it records.
        """
        policy = _policy(retry_policy, invocation_retry_policy)
        return lambda fn: self._register(fn, name, "service", policy, options)


class VirtualObject(ServiceDef):
    """A keyed object with durable per-key state and one writer per key.

    Exclusive handlers (the default) of one key run one at a time in arrival order;
    shared handlers run concurrently and can only read state.

    Example:
        >>> counter = VirtualObject("Counter")
        >>> @counter.handler()
        ... async def add(ctx: ObjectContext, n: int) -> int:
        ...     total = (await ctx.get("count", type_hint=int) or 0) + n
        ...     ctx.set("count", total)
        ...     return total
    """

    def __init__(
        self,
        name: str,
        *,
        retry_policy: RetryPolicy | None = None,
        description: str | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        invocation_context_managers: list[Callable[[], Any]] | None = None,
        **restate_options: Any,
    ) -> None:
        super().__init__(
            name=name,
            kind="object",
            retry_policy=_policy(retry_policy, invocation_retry_policy),
            description=description,
            context_managers=list(invocation_context_managers or []),
            restate_options=_restate_options(f"VirtualObject({name!r})", restate_options),
        )

    def handler(
        self,
        name: str | None = None,
        kind: Literal["exclusive", "shared"] = "exclusive",
        *,
        retry_policy: RetryPolicy | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        **options: Any,
    ) -> Callable[[H], H]:
        """Register a handler; ``kind="shared"`` for a concurrent read-only one.

        Also takes restate's handler keywords (see :meth:`Service.handler`).
        """
        if kind not in ("exclusive", "shared"):
            raise InvalidUsageError(f"handler kind must be 'exclusive' or 'shared', not {kind!r}")
        policy = _policy(retry_policy, invocation_retry_policy)
        return lambda fn: self._register(fn, name, kind, policy, options)


class Workflow(ServiceDef):
    """A workflow: ``main`` runs exactly once per workflow id; shared handlers interact.

    Example:
        >>> signup = Workflow("Signup")
        >>> @signup.main()
        ... async def run(ctx: WorkflowContext, email: str) -> bool:
        ...     return await ctx.promise("confirmed").value()
    """

    def __init__(
        self,
        name: str,
        *,
        retry_policy: RetryPolicy | None = None,
        description: str | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        invocation_context_managers: list[Callable[[], Any]] | None = None,
        **restate_options: Any,
    ) -> None:
        super().__init__(
            name=name,
            kind="workflow",
            retry_policy=_policy(retry_policy, invocation_retry_policy),
            description=description,
            context_managers=list(invocation_context_managers or []),
            restate_options=_restate_options(f"Workflow({name!r})", restate_options),
        )

    def main(
        self,
        name: str | None = None,
        *,
        retry_policy: RetryPolicy | None = None,
        workflow_retention: timedelta | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        **options: Any,
    ) -> Callable[[H], H]:
        """Register the workflow's main handler (runs once per workflow id).

        Args:
            name: The handler's name (default: the function's name).
            retry_policy: How failed attempts are retried.
            workflow_retention: How long a finished workflow is kept (its output, state,
                promises and journal) before it is forgotten and its id can run again.
                None (the default) keeps it, so it can be inspected.
        """
        if workflow_retention is not None and workflow_retention <= timedelta(0):
            raise InvalidUsageError(
                f"workflow {self.name}: workflow_retention must be positive (or None to keep)"
            )

        def deco(fn: H) -> H:
            if any(h.kind == "workflow" for h in self.handlers.values()):
                raise InvalidUsageError(f"workflow {self.name} has more than one main handler")
            policy = _policy(retry_policy, invocation_retry_policy)
            out = self._register(fn, name, "workflow", policy, options)
            handler_of(out).workflow_retention = workflow_retention
            return out

        return deco

    def handler(
        self,
        name: str | None = None,
        *,
        retry_policy: RetryPolicy | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        **options: Any,
    ) -> Callable[[H], H]:
        """Register a shared handler of the workflow (reads state, resolves promises)."""
        policy = _policy(retry_policy, invocation_retry_policy)
        return lambda fn: self._register(fn, name, "shared", policy, options)

    @property
    def main_handler(self) -> HandlerDef | None:
        return next((h for h in self.handlers.values() if h.kind == "workflow"), None)


def _handler_options(hdef: HandlerDef, options: dict[str, Any]) -> None:
    """restate's handler keywords: serdes and context managers honoured, the rest kept."""
    where = f"handler {hdef.service_name}.{hdef.name}"
    hdef.input_serde = check_serde(options.pop("input_serde", None), f"{where} input_serde")
    hdef.output_serde = check_serde(options.pop("output_serde", None), f"{where} output_serde")
    managers = options.pop("invocation_context_managers", None)
    if managers:
        hdef.context_managers = list(managers)
    hdef.restate_options = _restate_options(where, options, depth=5)


def handler_of(target: Any) -> HandlerDef:
    """The HandlerDef behind a decorated function (for ctx.*_call)."""
    hdef = getattr(target, "__durable_handler__", None)
    if not isinstance(hdef, HandlerDef):
        raise InvalidUsageError(
            f"{target!r} is not a durable handler: pass a function decorated with "
            "@service.handler(), or use ctx.generic_call(service, handler, arg)"
        )
    return hdef


def find_handler(services: Mapping[str, ServiceDef], service: str, name: str) -> HandlerDef | None:
    """The handler ``service/name`` among ``services`` (by name), or None."""
    s = services.get(service)
    return s.handlers.get(name) if s is not None else None
