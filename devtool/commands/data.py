"""`durable sql` (read-only SQL over the store) and `durable export` (Parquet)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ._common import JsonOpt, RestateOpt, StoreOpt, UrlOpt, emit_json, fail, out, seg, session

__all__ = ["sql", "export"]


def sql(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="One SELECT query.")],
    limit: Annotated[int, typer.Option("--limit", help="Most rows to return.")] = 1000,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Run one read-only SQL query over the store.

    Tables: invocations (and the invocation_details view), journal, state, state_history,
    timers, awakeables, promises, idempotency, attempts, logs. Anything but one query is
    refused; queries are time-limited and rows capped.
    """
    with session(url, store, False, "sql", restate) as c:
        r = c.post("/api/sql", {"sql": query, "limit": limit})
    if json_:
        emit_json(r)
        return
    t = Table(box=None, pad_edge=False)
    for col in r["columns"]:
        t.add_column(escape(col), overflow="fold")
    for row in r["rows"]:
        t.add_row(*(escape(v if isinstance(v, str) else json.dumps(v)) for v in row))
    out.print(t)
    out.print(f"{len(r['rows'])} row(s) in {r['elapsed_ms']:.1f} ms{cut_note(r)}")


def cut_note(result: dict) -> str:
    """What the summary line says when a cap cut the result, and how to get the rest."""
    if result.get("truncated_by") == "bytes":
        return " (cut at the result size cap: select fewer or narrower columns)"
    if result.get("truncated"):
        return " (more rows were cut: raise --limit)"
    return ""


def export(
    folder: Annotated[str, typer.Argument(metavar="DIR", help="Where to write the files.")],
    url: UrlOpt = None,
    restate: RestateOpt = None,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Write every table of the store to DIR/<table>.parquet."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        fail(f"{folder} exists and is not a folder")
    os.makedirs(folder, exist_ok=True)
    written = []
    with session(url, store, False, "export", restate) as c:
        for table in c.get("/api/export")["tables"]:
            data = c.download(f"/api/export/{seg(table)}")
            path = os.path.join(folder, f"{table}.parquet")
            with open(path, "wb") as f:
                f.write(data)
            written.append({"table": table, "path": path, "bytes": len(data)})
    if json_:
        emit_json({"files": written})
    else:
        for w in written:
            out.print(f"{w['path']}  ({w['bytes']} bytes)", markup=False)
