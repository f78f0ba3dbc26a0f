"""restate.object: :class:`VirtualObject`."""

from __future__ import annotations

from durable.definitions import VirtualObject

__all__ = ["VirtualObject"]
