"""restate.types: :class:`HarnessEnvironment`, :func:`extract_core_type`."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["HarnessEnvironment", "extract_core_type"]


@dataclass
class HarnessEnvironment:
    """restate's test-harness description (its harness is unsupported: use durable.testing)."""

    ingress_url: str
    admin_api_url: str
    client: Any


def extract_core_type(annotation: Any) -> tuple[Literal["optional", "simple"], Any]:
    """``("optional", T)`` for ``Optional[T]``, else ``("simple", annotation)``."""
    args = typing.get_args(annotation)
    if (
        typing.get_origin(annotation) in (typing.Union, types.UnionType)
        and len(args) == 2
        and type(None) in args
    ):
        return "optional", args[0] if args[1] is type(None) else args[1]
    return "simple", annotation
