"""Identifiers: time-ordered invocation ids (sortable, unguessable)."""

from __future__ import annotations

import hashlib
import os
import threading
import time

__all__ = ["new_invocation_id", "idempotent_invocation_id", "idempotency_scope", "is_invocation_id"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


_last = 0
_lock = threading.Lock()


def new_invocation_id() -> str:
    """``inv_`` + 26 base32 chars: 48 bits of milliseconds, then 80 random bits.

    Ids made by one process only grow: within one millisecond the next id is the last
    plus one (as ULID's monotonic mode), so ids sort in creation order, also among
    invocations made in one millisecond.
    """
    global _last
    n = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    with _lock:
        if n <= _last:
            n = _last + 1
        _last = n
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[n & 31])
        n >>= 5
    return "inv_" + "".join(reversed(chars))


def idempotent_invocation_id(scope: str, idempotency_key: str) -> str:
    """The id of the invocation that ``idempotency_key`` names within ``scope``
    (``Service/key/handler``): derived, so every caller using the key, from a handler
    or from the ingress, names the same invocation (as in Restate)."""
    digest = hashlib.sha256(f"{scope}\x00{idempotency_key}".encode()).digest()
    n = int.from_bytes(digest[:17], "big") >> 6  # 130 bits
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[n & 31])
        n >>= 5
    return "inv_" + "".join(reversed(chars))


def idempotency_scope(service: str, handler: str, key: str | None, workflow_main: bool) -> str:
    """The scope an idempotency key is unique in: one handler of one object key, or the
    one run of one workflow id."""
    if workflow_main:
        return f"workflow:{service}/{key}"
    return f"{service}/{key or ''}/{handler}"


def is_invocation_id(text: str) -> bool:
    """Whether ``text`` has the shape of an invocation id."""
    return len(text) == 30 and text.startswith("inv_") and all(c in _ALPHABET for c in text[4:])
