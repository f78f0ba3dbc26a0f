"""durable's definitions as restate-sdk's: names, kinds, retry policies, options, handlers.

:func:`refusals` lists what cannot be carried over (checked before anything is served);
:func:`build` makes one restate ``Service`` / ``VirtualObject`` / ``Workflow`` per
durable one. Each handler is a wrapper that restate calls with its context and the raw
input bytes (restate's ``BytesSerde`` both ways): it decodes the input with durable's
serde (a refused input: TerminalError 400, as durable dev), runs the durable handler
with a :class:`~.context.ServeContext`, encodes the result the same way, and gives
durable's ``TerminalError`` / ``RetryableError`` to restate as restate's.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import restate
from durable import serde as _serde
from durable.definitions import HandlerDef, RetryPolicy, ServiceDef
from durable.exceptions import RetryableError, TerminalError
from durable.logging import current_executor
from restate.retry_policy import InvocationRetryPolicy
from restate.serde import BytesSerde as RBytesSerde

from ..errors import AppLoadError
from .context import ServeContext
from .futures import decode, encode, to_restate

__all__ = ["build", "refusals", "retry_policy", "restate_services_defined", "FOREVER"]

_BYTES = RBytesSerde()

#: ``RetryPolicy(max_attempts=None)`` (retry forever) as a number Restate takes: Restate's
#: policy has no "unlimited" in a deployment's discovery, only a count (2**31 - 1 attempts
#: at a 10 s interval is 680 years).
FOREVER = 2**31 - 1

_CLASSES: dict[str, Any] = {
    "service": restate.Service,
    "object": restate.VirtualObject,
    "workflow": restate.Workflow,
}


def _accepted(fn: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(fn).parameters) - {"self"}


def _decorator_of(kind: str, hkind: str) -> Callable[..., Any]:
    cls = _CLASSES[kind]
    if kind == "workflow" and hkind == "workflow":
        return cls.main  # type: ignore[no-any-return]
    return cls.handler  # type: ignore[no-any-return]


def refusals(services: Mapping[str, ServiceDef]) -> list[str]:
    """What restate-sdk cannot carry over, one line each (empty: all of it can)."""
    out: list[str] = []
    for s in services.values():
        what = {"service": "Service", "object": "VirtualObject", "workflow": "Workflow"}[s.kind]
        taken = _accepted(_CLASSES[s.kind].__init__)
        for opt in sorted(set(s.restate_options) - taken):
            out.append(
                f"{what}({s.name!r}): {opt}= has no equivalent on a Restate {what} "
                f"(restate-sdk takes: {', '.join(sorted(taken - {'name'}))}); remove it"
            )
        for h in s.handlers.values():
            deco = _decorator_of(s.kind, h.kind)
            taken_h = _accepted(deco)
            where = "main handler" if h.kind == "workflow" else "handler"
            for opt in sorted(set(h.restate_options) - taken_h):
                out.append(
                    f"{s.name}/{h.name}: {opt}= has no equivalent on a Restate {what} "
                    f"{where}; remove it"
                )
    return out


def restate_services_defined() -> list[str]:
    """Names of restate-sdk services the app made itself (``import restate``): durable
    serve serves durable definitions only, so these would silently not be served."""
    import gc

    kinds = tuple(_CLASSES.values())
    return sorted(o.name for o in gc.get_objects() if isinstance(o, kinds))


def retry_policy(p: RetryPolicy | None) -> InvocationRetryPolicy | None:
    """durable's retry policy as Restate's (None: the cluster's default policy)."""
    if p is None:
        return None
    return InvocationRetryPolicy(
        initial_interval=p.initial_interval,
        exponentiation_factor=p.factor,
        max_interval=p.max_interval,
        max_attempts=p.max_attempts if p.max_attempts is not None else FOREVER,
        on_max_attempts="pause",  # durable pauses: so does Restate, if told
    )


def build(services: Mapping[str, ServiceDef]) -> list[Any]:
    """The restate definitions of ``services``; AppLoadError lists every refusal."""
    problems = refusals(services)
    if problems:
        raise AppLoadError(
            "durable serve cannot carry these over to Restate:\n  " + "\n  ".join(problems)
        )
    return [_service(s) for s in services.values()]


def _service(s: ServiceDef) -> Any:
    kwargs: dict[str, Any] = dict(s.restate_options)
    if s.description:
        kwargs["description"] = s.description
    policy = retry_policy(s.retry_policy)
    if policy is not None:
        kwargs["invocation_retry_policy"] = policy
    rsvc = _CLASSES[s.kind](s.name, **kwargs)
    for h in s.handlers.values():
        _handler(rsvc, s, h)
    return rsvc


def _handler(rsvc: Any, s: ServiceDef, h: HandlerDef) -> None:
    kwargs: dict[str, Any] = dict(h.restate_options)
    kwargs.update(name=h.name, input_serde=_BYTES, output_serde=_BYTES)
    if s.kind == "object":
        kwargs["kind"] = h.kind
    policy = retry_policy(h.retry_policy)
    if policy is not None:
        kwargs["invocation_retry_policy"] = policy
    if h.kind == "workflow":
        if h.workflow_retention is not None:
            kwargs["workflow_retention"] = h.workflow_retention
        rsvc.main(**kwargs)(wrap(h))
    else:
        rsvc.handler(**kwargs)(wrap(h))
    io = rsvc.handlers[h.name].handler_io
    if h.arity == 2 and h.input_serde is None:
        io.input_type.generate_json_schema = _schema(h.input_type)
    if io.output_type is not None and not io.output_type.is_void and h.output_serde is None:
        io.output_type.generate_json_schema = _schema(h.output_type)


def _schema(tp: Any) -> Callable[[], Any]:
    def generate() -> Any:
        try:
            return _serde.json_schema(tp) or True  # {}: any JSON
        except Exception:  # best effort, as durable dev's discovery
            return True

    return generate


def _void(tp: Any) -> bool:
    return tp is None or tp is type(None)


def wrap(h: HandlerDef) -> Callable[..., Any]:
    """The function restate calls for handler ``h``: ``(ctx)`` or ``(ctx, raw: bytes)``."""
    managers = h.service.context_managers + h.context_managers

    async def call(ctx: ServeContext, *arg: Any) -> Any:
        if not managers:
            return await h.fn(ctx, *arg)
        async with contextlib.AsyncExitStack() as stack:
            for make in managers:
                await stack.enter_async_context(make())
            return await h.fn(ctx, *arg)

    async def invoke(rctx: Any, *raw: bytes) -> bytes:
        ctx = ServeContext(rctx, h)
        token = current_executor.set(ctx.waits)
        try:
            if h.arity == 2:
                try:
                    if h.input_serde is not None:
                        arg = decode(h.input_serde, raw[0])
                    else:
                        body = bytes(raw[0]).decode() if raw and raw[0] else None
                        arg = _serde.deserialize(body, h.input_type, strict=True)
                except (TypeError, ValueError) as e:
                    msg = f"invalid input for {h.service_name}/{h.name}: {e}"
                    raise TerminalError(msg, 400) from e
                result = await call(ctx, arg)
            else:
                result = await call(ctx)
            if h.output_serde is not None:
                return encode(h.output_serde, result)
            if result is None:
                return b""  # an empty 200, as durable dev (and Restate) answer None
            try:
                return _serde.serialize(result).encode()
            except TypeError as e:
                raise TerminalError(f"cannot serialize the result: {e}", 500) from e
        except (TerminalError, RetryableError) as e:
            raise to_restate(e) from e
        finally:
            current_executor.reset(token)

    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if h.arity == 2:
        params.append(
            inspect.Parameter("raw", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=bytes)
        )
    returns = None if _void(h.output_type) and h.output_serde is None else bytes
    invoke.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    invoke.__name__ = h.name
    invoke.__doc__ = inspect.getdoc(h.fn)
    return invoke
