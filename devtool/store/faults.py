"""What the writer does when DuckDB refuses a transaction (the rare path).

Two kinds of failure, told apart by :func:`persistent`:

* **a bad operation** (a value DuckDB cannot store, a broken constraint): the group is
  sifted (:func:`sift`): trial transactions, rolled back, find the operations DuckDB
  refuses; the rest of the group is applied with a ``refused_writes`` record per refused
  operation, and its invocation is paused with an error that names the entry.
* **a persistent failure** (disk full, I/O error, a damaged file; or nearly every
  operation refused): nothing is applied and nothing is dropped; the store is
  *degraded*, takes no new work, and the writer retries with backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import duckdb

from .apply import Refusal
from .ops import Op, PurgeWorkflow, PutInvocation, PutPromise

__all__ = ["persistent", "reason", "sift", "target", "Persistent"]

_ENV_TYPES: tuple[type[BaseException], ...] = (
    OSError,
    MemoryError,
    duckdb.IOException,
    duckdb.FatalException,
    duckdb.InternalException,
    duckdb.OutOfMemoryException,
    duckdb.PermissionException,
    duckdb.InterruptException,
)
_ENV_WORDS = (
    "no space left",
    "could not write",
    "could not read",
    "read-only file system",
    "permission denied",
    "invalidated",
    "i/o error",
    "io error",
    "corrupt",
    "checksum",
)
# a group where DuckDB refuses more than this many operations, and most of them, is not
# a few bad values: the store itself fails (a damaged file)
_MANY = 8


class Persistent(Exception):
    """A failure that retrying the same operations later may clear (not a bad op)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def persistent(e: BaseException) -> bool:
    """Whether ``e`` is the store failing (disk, file), not one operation's values."""
    if isinstance(e, (Persistent, *_ENV_TYPES)):
        return True
    text = str(e).lower()
    return isinstance(e, duckdb.Error) and any(w in text for w in _ENV_WORDS)


def reason(e: BaseException, path: str) -> str:
    """A one-line reason for the degraded state, with what to do."""
    cause = e.cause if isinstance(e, Persistent) else e
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    text = first.lower()
    if "no space left" in text:
        return (
            f"the disk of the store {path} is full ({first}): free some space; the "
            "runtime retries and resumes by itself"
        )
    if "invalidated" in text or isinstance(cause, duckdb.FatalException):
        return (
            f"DuckDB stopped writing the store {path} ({first}): free space or fix the "
            "disk; the runtime reopens the store and resumes by itself"
        )
    return (
        f"the store {path} cannot be written ({first}): fix the cause (disk, file "
        "permissions, a damaged file: `durable store check`); the runtime retries by itself"
    )


def target(op: Op) -> tuple[str | None, int | None]:
    """The invocation and journal entry an operation belongs to (None when it has none)."""
    if isinstance(op, PutInvocation):
        return op.row.id, None
    if isinstance(op, PutPromise | PurgeWorkflow):
        return None, None
    return getattr(op, "invocation_id", None), getattr(op, "index", None)


def _text(value: object, limit: int = 2000) -> str:
    """``value`` as text DuckDB can store (lone surrogates escaped), cut to ``limit``."""
    s = value if isinstance(value, str) else repr(value)
    s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def sift(
    ops: list[Op],
    seq: int,
    first_error: BaseException,
    attempt: Callable[[list[Op], list[Refusal], bool], None],
    now: datetime,
) -> list[Refusal]:
    """Apply ``ops`` (one log group) without the operations DuckDB refuses.

    ``attempt(ops, refused, commit)`` runs one transaction (``commit=False``: a trial,
    rolled back). The shortest failing prefix of the remaining operations ends with a
    refused one (binary search over trials); it is set aside and the search goes on
    until the rest commits, with the refusals, in one transaction. Raises
    :class:`Persistent` when the failure is the store's, not an operation's.
    """
    keep = list(range(len(ops)))
    refused: list[Refusal] = []
    error = first_error
    while True:
        if persistent(error):
            raise Persistent(error)
        if not keep or (len(refused) >= _MANY and len(refused) * 2 > len(ops)):
            raise Persistent(error)
        lo, hi, hi_error = 0, len(keep), error  # the prefix of length hi fails
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            try:
                attempt([ops[i] for i in keep[:mid]], [], False)
                lo = mid
            except Exception as e:
                if persistent(e):
                    raise Persistent(e) from e
                hi, hi_error = mid, e
        i = keep.pop(hi - 1)
        inv, entry = target(ops[i])
        refused.append(
            Refusal(
                seq,
                i,
                inv,
                entry,
                type(ops[i]).__name__,
                _text(str(hi_error).strip().splitlines()[0] if str(hi_error).strip() else hi_error),
                _text(ops[i]),
                now,
            )
        )
        try:
            attempt([ops[j] for j in keep], refused, True)
            return refused
        except Exception as e:
            error = e
