"""restate.context_managers: :class:`contextvar`, an async context manager's value in a
ContextVar (for ``invocation_context_managers`` that yield something)."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Generic, ParamSpec, TypeVar

__all__ = ["contextvar"]

P = ParamSpec("P")
T = TypeVar("T")


class contextvar(Generic[P, T]):
    """Wraps an async context manager factory; ``.value`` is what it yielded."""

    def __init__(self, func: Callable[P, AbstractAsyncContextManager[T]]) -> None:
        self.func = func
        self._value: contextvars.ContextVar[T | None] = contextvars.ContextVar("value")

    @property
    def value(self) -> T:
        """What the wrapped context manager yielded (LookupError outside it)."""
        val = self._value.get(None)
        if val is None:
            raise LookupError("the context manager's value is read outside its block")
        return val

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> AbstractAsyncContextManager[None]:
        @asynccontextmanager
        async def wrapper() -> AsyncIterator[None]:
            async with self.func(*args, **kwargs) as value:
                token = self._value.set(value)
                try:
                    yield
                finally:
                    self._value.reset(token)

        return wrapper()
