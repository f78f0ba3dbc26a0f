"""restate.vm: the state machine's names that apps catch or check.

restate runs handlers on a Rust state machine; durable's executor does that job, so only
the names apps use in ``except`` clauses are here.
"""

from __future__ import annotations

from durable.exceptions import SuspendedError

__all__ = ["SuspendedException"]

#: Raised through a handler that is being suspended (restate <= 1.2 defined it here).
SuspendedException = SuspendedError
