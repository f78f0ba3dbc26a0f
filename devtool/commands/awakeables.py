"""`durable awakeables ls|resolve|reject`: pending awakeables and workflow promises."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import unquote

import typer
from rich.markup import escape
from rich.table import Table

from ._common import JsonOpt, RestateOpt, StoreOpt, UrlOpt, emit_json, fail, out, seg, session, when

__all__ = ["app"]

app = typer.Typer(
    help="Pending awakeables and workflow promises: list, resolve, reject.", no_args_is_help=True
)

IdArg = Annotated[
    str,
    typer.Argument(
        metavar="ID", help="An awakeable id (awk_...) or a promise id (promise/SERVICE/KEY/NAME)."
    ),
]


def _promise(awk_id: str) -> dict | None:
    if not awk_id.startswith("promise/"):
        return None
    parts = awk_id.split("/")
    if len(parts) != 4:
        fail("a promise id is promise/SERVICE/KEY/NAME, each part URL-encoded (see awakeables ls)")
    return {"service": unquote(parts[1]), "key": unquote(parts[2]), "name": unquote(parts[3])}


@app.command("ls")
def ls(
    url: UrlOpt = None,
    restate: RestateOpt = None,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List pending awakeables and promises, with the invocation that waits on each."""
    with session(url, store, False, "awakeables ls", restate) as c:
        r = c.get("/api/awakeables")
    if json_:
        emit_json(r)
        return
    rows = [
        (
            x["id"],
            f"{x['service']}/{x['handler']}" + (f" {x['key']!r}" if x["key"] is not None else ""),
            f"{x['invocation_id']} entry {x['entry_index']}",
            x["status"],
            when(x["created_at"], ms=False),
        )
        for x in [*r["awakeables"], *r["promises"]]
    ]
    if not rows:
        out.print("no pending awakeables or promises")
        return
    t = Table(box=None, pad_edge=False)
    for col in ("ID", "WAITING", "INVOCATION", "STATUS", "SINCE"):
        t.add_column(col, overflow="fold", no_wrap=col in ("ID", "STATUS"))
    for row in rows:
        t.add_row(*(escape(x) for x in row))
    out.print(t)


@app.command("resolve")
def resolve(
    awk_id: IdArg,
    value: Annotated[
        str, typer.Argument(metavar="VALUE", help="The result, as JSON (default null).")
    ] = "null",
    url: UrlOpt = None,
    restate: RestateOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Resolve a pending awakeable or promise with a JSON value; its invocation wakes."""
    try:
        parsed = json.loads(value)
    except ValueError:
        fail(f"VALUE must be JSON, e.g. '{{\"ok\": true}}' or '\"text\"' (got {value!r})")
    promise = _promise(awk_id)
    with session(url, None, True, "awakeables resolve", restate) as c:
        if promise is not None:
            r = c.post("/api/promises/resolve", {**promise, "value": parsed})
        else:
            r = c.post(f"/api/awakeables/{seg(awk_id)}/resolve", content=value.encode())
    emit_json(r) if json_ else out.print(f"resolved {escape(awk_id)}")


@app.command("reject")
def reject(
    awk_id: IdArg,
    message: Annotated[
        str, typer.Argument(metavar="MESSAGE", help="Why (the waiting handler sees it).")
    ] = "rejected",
    code: Annotated[int, typer.Option("--code", help="The failure's HTTP-like code.")] = 500,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Reject a pending awakeable or promise: the waiting handler gets a TerminalError."""
    promise = _promise(awk_id)
    body = {"message": message, "code": code}
    with session(url, None, True, "awakeables reject", restate) as c:
        if promise is not None:
            r = c.post("/api/promises/reject", {**promise, **body})
        else:
            r = c.post(f"/api/awakeables/{seg(awk_id)}/reject", body)
    emit_json(r) if json_ else out.print(f"rejected {escape(awk_id)}")
