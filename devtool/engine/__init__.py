"""The runtime engine: invocations from request to committed output (see :mod:`.core`)."""

from __future__ import annotations

from .core import Engine, EngineConfig, Outcome, WorkerLink

__all__ = ["Engine", "EngineConfig", "Outcome", "WorkerLink"]
