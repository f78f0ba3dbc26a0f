"""Opening a store file: the checks before DuckDB touches it, and one clear line per
failure (permission, read-only disk, not a DuckDB file, not a durable store, damage)."""

from __future__ import annotations

import errno
import os

import duckdb

from ..errors import StoreOpenError

__all__ = ["check_file", "check_contents", "open_error"]

_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of a DuckDB file


def _not_a_store(path: str, what: str) -> StoreOpenError:
    return StoreOpenError(
        f"{path} is not a durable store: {what}. Give the right file with --store, or move "
        "this one away to start a new store there."
    )


def check_file(path: str) -> None:
    """Refuse a file that is not a DuckDB database before DuckDB opens it."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except FileNotFoundError:
        return
    except OSError as e:
        raise open_error(path, e) from None
    if not head:
        return  # an empty file: DuckDB makes a new database in it
    if len(head) < 12 or head[8:12] != _DUCKDB_MAGIC:
        kind = "text" if all(32 <= b < 127 or b in b"\t\r\n" for b in head) else "data"
        if not head.strip(b"\0"):
            raise StoreOpenError(
                f"the store {path} is damaged: its header is zeroed, so DuckDB cannot read "
                "it. Restore the file from a copy, or move it away to start a new store."
            )
        raise _not_a_store(path, f"it holds {kind}, not a DuckDB database")


def check_contents(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Refuse a DuckDB file that is someone else's database, or shorter than its blocks."""
    tables = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    }
    if tables and "schema_migrations" not in tables:
        listed = ", ".join(sorted(tables)[:5])
        raise _not_a_store(path, f"it is another DuckDB database (tables: {listed})")
    if path == ":memory:":
        return
    # used blocks, not total_blocks: a checkpoint that frees the last blocks cuts them off
    # the file, and total_blocks still counts them (its free list keeps their ids)
    rows = con.execute(
        "SELECT block_size, total_blocks - free_blocks FROM pragma_database_size()"
    ).fetchall()
    if rows:
        block_size, used = int(rows[0][0]), int(rows[0][1])
        size = os.path.getsize(path)
        if size < block_size * used:
            raise StoreOpenError(
                f"the store {path} is damaged: the file has {size} bytes but its blocks need "
                f"{block_size * used} (it was cut short: a full disk, or an interrupted "
                "copy). Restore it from a copy; `durable store check` shows what it holds."
            )


def open_error(path: str, e: BaseException) -> StoreOpenError:
    """One line that says why ``path`` cannot be opened and what to do."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    low = str(e).lower()
    code = getattr(e, "errno", None)
    if code == errno.EROFS or "read-only file system" in low:
        return StoreOpenError(
            f"the store {path} is on a read-only file system: give --store a path on a "
            "writable disk (read this one with `durable sql --store ...` or `durable "
            "invocations ls --store ...`)"
        )
    if code in (errno.EACCES, errno.EPERM) or "permission denied" in low:
        return StoreOpenError(
            f"no permission to write the store {path} ({text}): give this user write access "
            "to the file and its folder, or use another --store"
        )
    if "not a valid duckdb database" in low:
        return _not_a_store(path, "DuckDB says it is not a valid DuckDB database")
    if "wal" in low.replace("wall", ""):
        return StoreOpenError(
            f"the store's write-ahead log {path}.wal is damaged ({text}). Move it away to "
            f"open the store as of its last checkpoint (the operation log {path}.oplog "
            "still holds what was acknowledged since, unless it was emptied)."
        )
    if code == errno.ENOSPC or "no space left" in low:
        return StoreOpenError(
            f"the disk of the store {path} is full ({text}): free some space and start again"
        )
    if isinstance(e, duckdb.Error | OSError):
        return StoreOpenError(
            f"the store {path} cannot be opened ({text}): it may be damaged; "
            "`durable store check` shows what it holds, or restore it from a copy"
        )
    return StoreOpenError(f"the store {path} cannot be opened: {type(e).__name__}: {text}")
