"""The runtime engine: invocations from request to committed output.

:class:`Engine` (in :mod:`.core`) is the facade; see docs/architecture.md for its modules.
"""

from __future__ import annotations

from .core import Engine
from .model import EngineConfig, Outcome, WorkerLink
from .snapshot import Snapshot

__all__ = ["Engine", "EngineConfig", "Outcome", "Snapshot", "WorkerLink"]
