"""The operation log: the store's commit point, an append-only file in front of DuckDB.

The writer appends each group of operations to this file and calls ``fdatasync``; once
that returns the group is durable and its submitters are told. DuckDB receives the same
operations a little later, many groups in one transaction (see :mod:`.writer`), and the
file is emptied whenever everything in it is in DuckDB. A DuckDB commit costs about a
millisecond of CPU whatever it carries, an append plus ``fdatasync`` a tenth of that, so
the handler's wait per journal entry is the cheap one.

A record is ``length (4 bytes) | crc32 (4) | seq (8) | pickled list of ops``; the groups
of one file have consecutive sequence numbers. :func:`scan` reads a file and tells two
kinds of bad bytes apart: a *torn tail* (nothing intact follows: a crash in the middle of
an append, never acknowledged; cut off) and *damage* (intact records follow the bad bytes:
acknowledged groups would be lost, so recovery refuses to go on; see
``durable store check``).
"""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from .ops import Op

__all__ = ["OpLog", "LogScan", "Damage", "log_path", "scan"]

_HEAD = struct.Struct("<IIQ")


def log_path(store_path: str) -> str:
    """Where the operation log of the store file ``store_path`` lives."""
    return store_path + ".oplog"


def encode_ops(ops: list[Op]) -> bytes:
    """The payload of one record."""
    return pickle.dumps(ops, protocol=pickle.HIGHEST_PROTOCOL)


@dataclass(frozen=True)
class Damage:
    """Bad bytes with intact records after them."""

    offset: int  # where the bad bytes start
    size: int  # how many bytes up to the next intact record
    after_seq: int | None  # the last intact record before them (None: at the start)
    next_seq: int  # the first intact record after them

    @property
    def lost(self) -> tuple[int | None, int]:
        """The sequence numbers the bad bytes held: (first or None when unknown, last)."""
        return (None if self.after_seq is None else self.after_seq + 1, self.next_seq - 1)


@dataclass(frozen=True)
class LogScan:
    """What one read of a log file found."""

    path: str
    size: int
    records: list[tuple[int, list[Op]]] = field(default_factory=list)  # intact, in order
    damage: list[Damage] = field(default_factory=list)
    torn_tail: int = 0  # bytes at the end that hold no intact record
    torn_offset: int = 0

    def intact_after(self, d: Damage) -> int:
        return sum(1 for seq, _ in self.records if seq >= d.next_seq)


def _record_at(data: bytes, pos: int, last: int | None, exact: bool) -> tuple[int, int] | None:
    """``(seq, end)`` of an intact record at ``pos`` that may follow ``last``, else None."""
    if pos + _HEAD.size > len(data):
        return None
    length, crc, seq = _HEAD.unpack_from(data, pos)
    end = pos + _HEAD.size + length
    if end > len(data) or seq == 0:
        return None
    if last is not None and (seq != last + 1 if exact else seq <= last):
        return None
    if zlib.crc32(data[pos + _HEAD.size : end]) != crc:
        return None
    return seq, end


def _loads(data: bytes, pos: int, end: int) -> list[Op] | None:
    try:
        ops = pickle.loads(data[pos + _HEAD.size : end])
    except Exception:  # a checksum that matches by chance over bad bytes
        return None
    return ops if isinstance(ops, list) else None


def scan(path: str) -> LogScan:
    """Read the log at ``path``: its intact records, its damage and its torn tail."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return LogScan(path, 0)
    records: list[tuple[int, list[Op]]] = []
    damage: list[Damage] = []
    pos, last = 0, None
    while pos < len(data):
        found = _record_at(data, pos, last, exact=True)
        ops = _loads(data, pos, found[1]) if found else None
        if found is not None and ops is not None:
            records.append((found[0], ops))
            last, pos = found[0], found[1]
            continue
        # bad bytes: the rare path, so look for an intact record at every later offset
        nxt = None
        for p in range(pos + 1, len(data) - _HEAD.size + 1):
            cand = _record_at(data, p, last, exact=False)
            ops = _loads(data, p, cand[1]) if cand is not None else None
            if cand is not None and ops is not None:
                nxt = p, cand, ops
                break
        if nxt is None:
            return LogScan(path, len(data), records, damage, len(data) - pos, pos)
        p, (seq, end), ops = nxt
        damage.append(Damage(pos, p - pos, last, seq))
        records.append((seq, ops))
        last, pos = seq, end
    return LogScan(path, len(data), records, damage)


class OpLog:
    """One open log file; used by the writer thread only."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size

    @property
    def size(self) -> int:
        return self._size

    def records(self) -> Iterator[tuple[int, list[Op]]]:
        """The intact records in order, as (seq, ops)."""
        yield from scan(self.path).records

    def append(self, seq: int, payload: bytes) -> None:
        """Append one record and make it durable."""
        rec = _HEAD.pack(len(payload), zlib.crc32(payload), seq) + payload
        try:
            n = os.write(self._fd, rec)
            while n < len(rec):  # a short write (rare): write the rest
                n += os.write(self._fd, rec[n:])
            os.fdatasync(self._fd)
        except OSError:
            # a torn record would hide every later one from recovery: cut it off
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            raise
        self._size += len(rec)

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` bytes (a torn tail)."""
        os.ftruncate(self._fd, size)
        os.fsync(self._fd)
        self._size = size

    def reset(self) -> None:
        """Empty the file: everything in it is in DuckDB."""
        if self._size:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
            self._size = 0

    def close(self) -> None:
        os.close(self._fd)
