"""Fixtures of the TUI tests (the helpers are in tui_stub.py)."""

from __future__ import annotations

import pytest
from tui_stub import StubRuntime


@pytest.fixture
def stub() -> StubRuntime:
    """A fake admin API with fixed data; ``stub.app()`` is a TUI pointed at it."""
    return StubRuntime()
