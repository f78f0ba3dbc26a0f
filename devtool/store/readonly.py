"""Read-only SQL over the store (``durable sql``, ``POST /api/sql``, ``durable export``).

A statement is accepted only when DuckDB's own parser says it is one ``SELECT`` (which
includes ``WITH``, ``VALUES``, ``FROM t``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``), and
when it reads only the store: table functions and scalar functions that reach files,
the network or the environment are refused. It then runs in a ``READ ONLY``
transaction on its own cursor, is interrupted after a time limit (at most
:data:`MAX_TIMEOUT_S`, whatever the caller asks), and returns at most a capped number of
rows and about :data:`MAX_RESULT_BYTES` of values (then ``truncated`` is true and
``truncated_by`` says which cap cut it).
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import json
import math
import os
import re
import threading
import time
import uuid
from typing import Any

import duckdb

__all__ = [
    "SqlRefused",
    "check_query",
    "run_query",
    "export_table",
    "DEFAULT_TIMEOUT_S",
    "MAX_TIMEOUT_S",
    "MAX_RESULT_BYTES",
]

DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 10.0
#: about how much text a result may hold (strings and blobs by length, other values 8)
MAX_RESULT_BYTES = 16 * 1024 * 1024
_BATCH = 16
DEFAULT_MAX_ROWS = 1000
HARD_MAX_ROWS = 100_000

#: Table functions a query may use: generators and DuckDB's own catalog.
_TABLE_FUNCTIONS_OK = {
    "range",
    "generate_series",
    "unnest",
    "json_each",
    "json_tree",
    "pragma_table_info",
    "pragma_storage_info",
    "pragma_database_size",
    "pragma_show_tables",
    "pragma_version",
    "pragma_platform",
    "test_all_types",
}
#: Scalar functions that reach outside the store.
_FUNCTIONS_REFUSED = {
    "getenv",
    "read_text",
    "read_blob",
    "glob",
    "sniff_csv",
    "query",
    "query_table",
}

_SHOW = re.compile(
    r"\s*(describe|show|summarize)(\s+(all\s+)?[A-Za-z_][A-Za-z0-9_]*)?\s*;?\s*", re.IGNORECASE
)


class SqlRefused(ValueError):
    """The statement is not a read-only query over the store."""


def _walk(node: Any, found: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        t = node.get("type")
        if t == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            found.append(("table_function", str(fn.get("function_name", "")).lower()))
        elif t == "BASE_TABLE":
            found.append(("table", str(node.get("table_name", ""))))
        elif node.get("class") == "FUNCTION":
            found.append(("function", str(node.get("function_name", "")).lower()))
        for v in node.values():
            _walk(v, found)
    elif isinstance(node, list):
        for v in node:
            _walk(v, found)


def check_query(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise :class:`SqlRefused` unless ``sql`` is one query that reads only the store."""
    if not sql.strip():
        raise SqlRefused("empty SQL: give one SELECT query")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise SqlRefused(f"the SQL does not parse: {e}") from None
    if len(statements) != 1:
        raise SqlRefused(f"give exactly one query ({len(statements)} statements given)")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        name = getattr(kind, "name", str(kind))
        raise SqlRefused(
            f"only read-only queries (SELECT, WITH, DESCRIBE...) are allowed; this is a "
            f"{name} statement. The store changes only through the runtime."
        )
    tree = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0]
    parsed = json.loads(tree)
    if parsed.get("error"):  # DESCRIBE/SHOW/SUMMARIZE cannot be serialized: names only
        if _SHOW.fullmatch(sql):
            return
        raise SqlRefused("DESCRIBE, SHOW and SUMMARIZE take a table name (not a file)")
    found: list[tuple[str, str]] = []
    _walk(parsed.get("statements", []), found)
    for what, name in found:
        if what == "table_function" and not (
            name in _TABLE_FUNCTIONS_OK or name.startswith("duckdb_")
        ):
            raise SqlRefused(
                f"table function {name}() is not allowed: queries read the store's tables only"
            )
        if what == "function" and (name in _FUNCTIONS_REFUSED or name.startswith("read_")):
            raise SqlRefused(f"function {name}() is not allowed in read-only SQL")
        if what == "table" and ("/" in name or "." in name or "\\" in name):
            raise SqlRefused(f"{name!r} looks like a file: queries read the store's tables only")


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, _dt.datetime):
        return v.isoformat() + ("Z" if v.tzinfo is None else "")
    if isinstance(v, (_dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return v.total_seconds()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


def _size(v: Any) -> int:
    if isinstance(v, (str, bytes, bytearray, memoryview)):
        return len(v)
    if isinstance(v, dict):
        return sum(_size(k) + _size(x) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return 8 + sum(_size(x) for x in v)
    return 8


def run_query(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """Check and run ``sql``; blocking (call it off the event loop).

    Returns ``{"columns", "types", "rows", "truncated", "truncated_by", "elapsed_ms"}``
    (``truncated_by``: ``"rows"``, ``"bytes"`` or None). Raises SqlRefused for a
    statement that is not allowed, TimeoutError past ``timeout_s`` (cut to
    MAX_TIMEOUT_S; a NaN or a value not above 0 means the default), and duckdb.Error
    for a query that fails.
    """
    max_rows = max(1, min(max_rows, HARD_MAX_ROWS))
    if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
        timeout_s = DEFAULT_TIMEOUT_S
    timeout_s = min(float(timeout_s), MAX_TIMEOUT_S)
    cur = con.cursor()
    timer: threading.Timer | None = None
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        cur.interrupt()

    try:
        check_query(cur, sql)
        t0 = time.perf_counter()
        cur.execute("BEGIN TRANSACTION READ ONLY")
        timer = threading.Timer(timeout_s, stop)
        timer.daemon = True
        timer.start()
        try:
            cur.execute(sql)
            columns = [d[0] for d in cur.description or []]
            types = [str(d[1]) for d in cur.description or []]
            rows: list[Any] = []
            size, cut, batch_size = 0, None, _BATCH
            while cut is None and len(rows) <= max_rows:
                batch = cur.fetchmany(min(batch_size, max_rows + 1 - len(rows)))
                if not batch:
                    break
                for row in batch:
                    size += _size(row)
                    if size > MAX_RESULT_BYTES:
                        cut = "bytes"
                        break
                    rows.append(row)
                # big rows: fetch fewer at a time, so one batch cannot hold much over the cap
                per_row = max(1, size // max(1, len(rows)))
                batch_size = max(1, min(1024, (MAX_RESULT_BYTES - size) // per_row))
        except duckdb.Error as e:
            if timed_out.is_set():
                raise TimeoutError(
                    f"the query ran longer than {timeout_s:g} s and was stopped"
                ) from None
            raise duckdb.Error(str(e).strip()) from None
        finally:
            timer.cancel()
        elapsed = (time.perf_counter() - t0) * 1000
        if cut is None and len(rows) > max_rows:
            cut = "rows"
        return {
            "columns": columns,
            "types": types,
            "rows": [[_jsonable(v) for v in r] for r in rows[:max_rows]],
            "truncated": cut is not None,
            "truncated_by": cut,
            "elapsed_ms": round(elapsed, 3),
        }
    finally:
        try:
            cur.execute("ROLLBACK")
        except duckdb.Error:
            pass
        cur.close()


def export_table(con: duckdb.DuckDBPyConnection, table: str, path: str) -> int:
    """Write one table or view of the store to a Parquet file; returns its row count."""
    cur = con.cursor()
    try:
        names = {
            r[0]
            for r in cur.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                "UNION ALL SELECT view_name FROM duckdb_views() WHERE schema_name = 'main'"
            ).fetchall()
        }
        if table not in names:
            raise LookupError(f"the store has no table {table!r}")
        quoted = '"' + table.replace('"', '""') + '"'
        target = os.path.abspath(path).replace("'", "''")
        cur.execute(f"COPY (SELECT * FROM {quoted}) TO '{target}' (FORMAT parquet)")
        return int(cur.execute(f"SELECT count(*) FROM {quoted}").fetchall()[0][0])
    finally:
        cur.close()
