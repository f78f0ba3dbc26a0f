"""restate.service: :class:`Service`."""

from __future__ import annotations

from durable.definitions import Service

__all__ = ["Service"]
