"""`durable store check|repair`: what a store holds, and a damaged operation log repaired.

Both work on the files, with no runtime: ``check`` reads them without changing anything;
``repair`` opens the store, applies the intact records of its operation log and loses
only the damaged ones (a copy of the log is saved beside it first).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import duckdb
import typer

from ..client import DEFAULT_STORE
from ..errors import DevtoolError
from ..store import connect_config
from ..store.opening import check_contents, check_file, open_error
from ..store.oplog import log_path, scan
from ..store.recovery import Findings, findings
from ._common import JsonOpt, YesOpt, emit_json, err, fail, out

__all__ = ["app", "inspect"]

app = typer.Typer(
    help="Check a store's files, and repair a damaged operation log.", no_args_is_help=True
)

PathOpt = Annotated[
    str | None,
    typer.Option("--store", help=f"The store file (default {DEFAULT_STORE}).", show_default=False),
]


def _groups(seqs: list[int]) -> str:
    if not seqs:
        return "none"
    runs: list[str] = []
    start = prev = seqs[0]
    for s in [*seqs[1:], None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if s is not None:
            start = prev = s
    return ", ".join(runs)


def _read_duckdb(path: str) -> dict[str, Any]:
    """What the DuckDB file holds, reading every row (a damaged block shows up)."""
    info: dict[str, Any] = {"ok": False, "error": None, "applied": 0, "refused": []}
    try:
        check_file(path)
        con = duckdb.connect(path, read_only=True, config=connect_config)
    except DevtoolError as e:
        info["error"] = str(e)
        return info
    except (duckdb.Error, OSError) as e:
        if "lock" in str(e).lower():
            info["error"] = f"a process holds {path} (a runtime?): stop it to check the DuckDB file"
        else:
            info["error"] = str(open_error(path, e))
        return info
    try:
        check_contents(con, path)
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
            ).fetchall()
        ]
        rows = 0
        for t in tables:
            con.execute(f'SELECT * FROM "{t}"')
            while batch := con.fetchmany(10_000):
                rows += len(batch)
        info["rows"] = rows
        if "oplog_applied" in tables:
            info["applied"] = int(con.execute("SELECT seq FROM oplog_applied").fetchall()[0][0])
        if "refused_writes" in tables:
            info["refused"] = [
                {
                    "seq": r[0],
                    "invocation_id": r[1],
                    "entry_index": r[2],
                    "operation": r[3],
                    "error": r[4],
                }
                for r in con.execute(
                    "SELECT seq, invocation_id, entry_index, operation, error FROM "
                    "refused_writes ORDER BY seq, position"
                ).fetchall()
            ]
        info["ok"] = True
    except DevtoolError as e:
        info["error"] = str(e)
    except (duckdb.Error, OSError) as e:
        info["error"] = str(open_error(path, e))
    finally:
        con.close()
    return info


def inspect(path: str) -> dict[str, Any]:
    """The report of ``durable store check`` (its ``--json`` form)."""
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise DevtoolError(f"there is no store at {path}: give its path with --store")
    db = _read_duckdb(path)
    f: Findings = findings(scan(log_path(path)), db["applied"])
    lost = [s for _d, first, last in f.losses for s in range(first, last + 1)]
    return {
        "store": path,
        "duckdb": db,
        "oplog": {
            "path": f.scan.path,
            "bytes": f.scan.size,
            "records": len(f.scan.records),
            "to_apply": f.to_apply,
            "damage": [
                {
                    "offset": d.offset,
                    "bytes": d.size,
                    "lost": list(range(first, last + 1)),
                    "intact_after": f.scan.intact_after(d),
                }
                for d, first, last in f.losses
            ],
            "torn_tail": {"offset": f.scan.torn_offset, "bytes": f.scan.torn_tail}
            if f.scan.torn_tail
            else None,
        },
        "lost_on_repair": lost,
        "needs_repair": bool(lost),
        "ok": db["ok"] and not lost,
    }


def _print(r: dict[str, Any]) -> None:
    db, log = r["duckdb"], r["oplog"]
    out.print(f"store      {r['store']}", markup=False)
    if db["ok"]:
        out.print(
            f"DuckDB     ok: {db['rows']} rows read; holds write groups up to {db['applied']}",
            markup=False,
        )
    else:
        out.print(f"DuckDB     damaged or unreadable: {db['error']}", markup=False)
    out.print(
        f"oplog      {log['path']}: {log['bytes']} bytes, {log['records']} intact records; "
        f"groups to apply at the next start: {_groups(log['to_apply'])}",
        markup=False,
    )
    for d in log["damage"]:
        out.print(
            f"  damaged  {d['bytes']} bytes at offset {d['offset']}: group(s) "
            f"{_groups(d['lost'])} cannot be read; {d['intact_after']} intact records follow",
            markup=False,
        )
    if log["torn_tail"]:
        t = log["torn_tail"]
        out.print(
            f"  torn     {t['bytes']} bytes at offset {t['offset']} at the end: a write a crash "
            "interrupted, never acknowledged; cut at the next start",
            markup=False,
        )
    for x in db["refused"]:
        who = x["invocation_id"] or "no invocation"
        entry = f" entry {x['entry_index']}" if x["entry_index"] is not None else ""
        out.print(
            f"  refused  group {x['seq']}: {who}{entry}: {x['operation']}: {x['error']}",
            markup=False,
        )
    if r["needs_repair"]:
        keep = [s for s in log["to_apply"]]
        out.print(
            f"verdict    the operation log is damaged: the runtime will not start. `durable "
            f"store repair --store {r['store']}` applies group(s) {_groups(keep)} and loses "
            f"group(s) {_groups(r['lost_on_repair'])}",
            markup=False,
        )
    elif not db["ok"]:
        out.print(
            "verdict    the DuckDB file cannot be used: restore it from a copy (the operation "
            "log alone does not hold the whole store)",
            markup=False,
        )
    else:
        out.print("verdict    ok: nothing acknowledged is lost", markup=False)


@app.command("check")
def check(store: PathOpt = None, json_: JsonOpt = False) -> None:
    """Read the store's files (no runtime needed) and say what would be kept and lost.

    Exits with 1 when the store needs a repair or its DuckDB file is damaged.
    """
    try:
        r = inspect(store or DEFAULT_STORE)
    except DevtoolError as e:
        fail(str(e))
    if json_:
        emit_json(r)
    else:
        _print(r)
    if not r["ok"]:
        raise typer.Exit(1)


@app.command("repair")
def repair(store: PathOpt = None, yes: YesOpt = False) -> None:
    """Lose the damaged records of the operation log, apply the intact ones, and start clean.

    Asks first unless --yes; a copy of the damaged log is kept as <store>.oplog.damaged-*.
    """
    from ..store import Store

    try:
        r = inspect(store or DEFAULT_STORE)
    except DevtoolError as e:
        fail(str(e))
    path = r["store"]
    if not r["needs_repair"]:
        if not r["duckdb"]["ok"]:
            fail(
                f"the operation log is intact; the DuckDB file is the problem "
                f"({r['duckdb']['error']}): repair cannot rebuild it, restore it from a copy"
            )
        out.print(f"nothing to repair: the operation log of {path} is intact", markup=False)
        return
    _print(r)
    if not yes and not typer.confirm(
        f"lose group(s) {_groups(r['lost_on_repair'])} for good and apply the rest?"
    ):
        fail("nothing was changed")
    try:
        Store.open(path, {"what": "durable store repair"}, repair=True).close()
    except DevtoolError as e:
        fail(str(e))
    err.print(
        f"[durable] repaired {path}: lost group(s) {_groups(r['lost_on_repair'])}; "
        "the runtime starts cleanly now",
        markup=False,
    )
