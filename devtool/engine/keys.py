"""Key queues: at most one exclusive handler of a virtual object runs per key.

The key's owner runs (or waits suspended, backing-off, paused); the others wait in the
key's inbox in arrival order until the owner ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

__all__ = ["KeyQueues"]

Key = tuple[str, str]


class KeyQueues:
    def __init__(self) -> None:
        self.owner: dict[Key, str] = {}
        self.queue: dict[Key, deque[str]] = {}

    def busy(self, k: Key) -> bool:
        return k in self.owner

    def hold(self, k: Key, inv_id: str) -> None:
        """``inv_id`` owns the key now."""
        self.owner[k] = inv_id

    def wait(self, k: Key, inv_id: str) -> None:
        """``inv_id`` waits for the key, behind the ones already waiting."""
        self.queue.setdefault(k, deque()).append(inv_id)

    def remove(self, k: Key, inv_id: str) -> None:
        """``inv_id`` stops waiting (cancelled or killed while pending)."""
        q = self.queue.get(k)
        if q is not None:
            try:
                q.remove(inv_id)
            except ValueError:
                pass

    def release(self, k: Key, owner: str | None, pending: Callable[[str], bool]) -> str | None:
        """Free the key (if ``owner`` holds it; any owner with None) and hand it to the
        first waiting invocation that is still pending; returns that one's id."""
        if owner is not None and self.owner.get(k) != owner:
            return None
        self.owner.pop(k, None)
        q = self.queue.get(k)
        nxt: str | None = None
        while q:
            candidate = q.popleft()
            if pending(candidate):
                self.owner[k] = nxt = candidate
                break
        if q is not None and not q:
            self.queue.pop(k, None)
        return nxt

    def position(self, k: Key, inv_id: str, pending: Callable[[str], bool]) -> int | None:
        """1 for the next invocation to run on the key, 2 behind it...; None if not queued."""
        position = 0
        for other in self.queue.get(k, ()):
            if pending(other):
                position += 1
            if other == inv_id:
                return position
        return None

    def orphaned(self) -> list[Key]:
        """Keys with waiting invocations and no owner (the owner ended before a crash)."""
        return [k for k, q in self.queue.items() if k not in self.owner and q]
