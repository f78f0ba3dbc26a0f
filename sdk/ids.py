"""Identifiers: time-ordered invocation ids (sortable, unguessable)."""

from __future__ import annotations

import os
import time

__all__ = ["new_invocation_id", "is_invocation_id"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def new_invocation_id() -> str:
    """``inv_`` + 26 base32 chars: 48 bits of milliseconds, then 80 random bits."""
    n = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[n & 31])
        n >>= 5
    return "inv_" + "".join(reversed(chars))


def is_invocation_id(text: str) -> bool:
    """Whether ``text`` has the shape of an invocation id."""
    return len(text) == 30 and text.startswith("inv_") and all(c in _ALPHABET for c in text[4:])
