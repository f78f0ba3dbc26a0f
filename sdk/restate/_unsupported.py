"""restate names that durable cannot provide: importable, failing when used, with why."""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = [
    "ConnectError",
    "connect",
    "with_connection",
    "create_client",
    "create_test_harness",
    "test_harness",
    "unsupported",
]


def unsupported(name: str, why: str) -> NoReturn:
    raise NotImplementedError(
        f"restate.{name} is not supported when durable serves a Restate app: {why}"
    )


class ConnectError(Exception):
    """restate's tunnel error (never raised by durable: the tunnel is not supported)."""


def connect(*_args: Any, **_kwargs: Any) -> NoReturn:
    """Unsupported: Restate Cloud's tunnel."""
    unsupported("connect", "it tunnels to Restate Cloud")


def with_connection(*_args: Any, **_kwargs: Any) -> NoReturn:
    """Unsupported: Restate Cloud's tunnel."""
    unsupported("with_connection", "it tunnels to Restate Cloud")


def create_client(*_args: Any, **_kwargs: Any) -> NoReturn:
    """Unsupported: call durable dev's ingress over HTTP, or use durable.testing."""
    unsupported("create_client", "call durable dev's ingress with httpx, or use durable.testing")


def create_test_harness(*_args: Any, **_kwargs: Any) -> NoReturn:
    """Unsupported: use durable.testing, an in-process runtime with a virtual clock."""
    unsupported("create_test_harness", "it runs Restate in Docker; use durable.testing")


def test_harness(*_args: Any, **_kwargs: Any) -> NoReturn:
    """Unsupported: use durable.testing, an in-process runtime with a virtual clock."""
    unsupported("test_harness", "it runs Restate in Docker; use durable.testing")


test_harness.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
