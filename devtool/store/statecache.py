"""Committed K/V state of recently used keys, kept in memory.

Every invocation of a virtual object or workflow starts with the state of its key
(eager state). Reading it from DuckDB on every dispatch costs a query per invocation; this
cache answers instead for keys used recently. It only ever holds *committed* state: the
writer thread applies each transaction's state changes here right after its ``COMMIT``,
so a shared handler never sees a value that a crash could still take back.

A miss reads the table on a reader thread. If a commit touches the key while that read
runs, the read may predate the commit, so its result is returned to the caller (it was
committed state when read) but not kept. The cache is bounded by keys and bytes (least
recently used keys are dropped; a key with very large state is not kept).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["StateCache", "StateChanges"]

Key = tuple[str, str]  # (service, key)


class _Read:
    """One in-flight read of the table; ``stale`` once a commit touched its key."""

    __slots__ = ("stale",)

    def __init__(self) -> None:
        self.stale = False


#: What one transaction changed: per key, (cleared all first?, {name: value or None}).
StateChanges = dict[Key, tuple[bool, dict[str, str | None]]]


class StateCache:
    """See the module docstring. Thread-safe: the writer thread updates, the loop reads."""

    def __init__(self, max_keys: int = 10_000, max_bytes: int = 64 << 20) -> None:
        self.max_keys = max_keys
        self.max_bytes = max_bytes  # of names and values; a key over 1/16 is not kept
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._data: OrderedDict[Key, dict[str, str]] = OrderedDict()
        self._sizes: dict[Key, int] = {}
        self._bytes = 0
        self._reads: dict[Key, list[_Read]] = {}  # reads of the table in flight

    def get(self, k: Key) -> dict[str, str] | None:
        """A copy of the key's committed state, or None when not cached."""
        with self._lock:
            state = self._data.get(k)
            if state is None:
                self.misses += 1
                return None
            self.hits += 1
            self._data.move_to_end(k)
            return dict(state)

    def begin_read(self, k: Key) -> _Read:
        """Register a read of the table for ``k``; pass the token to :meth:`end_read`."""
        token = _Read()
        with self._lock:
            self._reads.setdefault(k, []).append(token)
        return token

    def end_read(self, k: Key, token: _Read, state: dict[str, str] | None) -> None:
        """Keep what the read found (``None``: the read failed), unless a commit raced it."""
        with self._lock:
            tokens = self._reads.get(k, [])
            if token in tokens:
                tokens.remove(token)
            if not tokens:
                self._reads.pop(k, None)
            if state is not None and not token.stale and k not in self._data:
                self._put(k, dict(state))

    def committed(self, changes: StateChanges) -> None:
        """Apply one committed transaction's state changes (called by the writer thread)."""
        with self._lock:
            for k, (clear_all, names) in changes.items():
                for token in self._reads.get(k, ()):
                    token.stale = True
                state = self._data.get(k)
                if state is None:
                    continue
                if clear_all:
                    state.clear()
                for name, value in names.items():
                    if value is None:
                        state.pop(name, None)
                    else:
                        state[name] = value
                self._resize(k, state)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._sizes.clear()
            self._bytes = 0
            for tokens in self._reads.values():
                for token in tokens:
                    token.stale = True

    def _put(self, k: Key, state: dict[str, str]) -> None:
        self._data[k] = state
        self._data.move_to_end(k)
        self._resize(k, state)

    def _resize(self, k: Key, state: dict[str, str]) -> None:
        size = sum(len(n) + len(v) for n, v in state.items())
        self._bytes += size - self._sizes.get(k, 0)
        self._sizes[k] = size
        if size > self.max_bytes // 16:
            self._drop(k)
        while self._data and (len(self._data) > self.max_keys or self._bytes > self.max_bytes):
            self._drop(next(iter(self._data)))

    def _drop(self, k: Key) -> None:
        self._data.pop(k, None)
        self._bytes -= self._sizes.pop(k, 0)
