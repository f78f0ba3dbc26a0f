"""restate.workflow: :class:`Workflow`."""

from __future__ import annotations

from durable.definitions import Workflow

__all__ = ["Workflow"]
