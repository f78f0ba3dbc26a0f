"""The operation log: the store's commit point, an append-only file in front of DuckDB.

The writer appends each group of operations to this file and calls ``fdatasync``; once
that returns the group is durable and its submitters are told. DuckDB receives the same
operations a little later, many groups in one transaction (see :mod:`.writer`), and the
file is emptied whenever everything in it is in DuckDB. A DuckDB commit costs about a
millisecond of CPU whatever it carries, an append plus ``fdatasync`` a tenth of that, so
the handler's wait per journal entry is the cheap one.

A record is ``length (4 bytes) | crc32 (4) | seq (8) | pickled list of ops``. Reading
stops at the first record that is torn (a crash in the middle of a write) or out of
sequence; what follows it was never acknowledged.
"""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from collections.abc import Iterator

from .ops import Op

__all__ = ["OpLog", "log_path"]

_HEAD = struct.Struct("<IIQ")


def log_path(store_path: str) -> str:
    """Where the operation log of the store file ``store_path`` lives."""
    return store_path + ".oplog"


def encode_ops(ops: list[Op]) -> bytes:
    """The payload of one record."""
    return pickle.dumps(ops, protocol=pickle.HIGHEST_PROTOCOL)


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
        """The intact records in order, as (seq, ops); stops at a torn one."""
        with open(self.path, "rb") as f:
            data = f.read()
        pos = 0
        last = -1
        while pos + _HEAD.size <= len(data):
            length, crc, seq = _HEAD.unpack_from(data, pos)
            body = data[pos + _HEAD.size : pos + _HEAD.size + length]
            if len(body) < length or zlib.crc32(body) != crc or seq <= last:
                break
            yield seq, pickle.loads(body)
            last = seq
            pos += _HEAD.size + length

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

    def reset(self) -> None:
        """Empty the file: everything in it is in DuckDB."""
        if self._size:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
            self._size = 0

    def close(self) -> None:
        os.close(self._fd)
