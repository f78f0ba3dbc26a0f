"""`durable state get|set|ls`: the K/V state of objects and workflows."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ._common import JsonOpt, RestateOpt, StoreOpt, UrlOpt, emit_json, fail, out, seg, session

__all__ = ["app"]

app = typer.Typer(help="Read and change the state of objects and workflows.", no_args_is_help=True)

ServiceArg = Annotated[str, typer.Argument(metavar="SERVICE", help="The object or workflow.")]
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="The object key or workflow id.")]


@app.command("get")
def get(
    service: ServiceArg,
    key: KeyArg,
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="One entry (default: all).")
    ] = None,
    invocation: Annotated[
        str | None,
        typer.Option("--invocation", help="Show the state as it stood in this invocation..."),
    ] = None,
    entry: Annotated[
        int | None, typer.Option("--entry", help="...just after this journal entry.")
    ] = None,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Print the state of a key: now, or as of an invocation's entry (time travel)."""
    if entry is not None and invocation is None:
        fail("--entry needs --invocation (the state as of that invocation's entry)")
    with session(url, store, False, "state get", restate) as c:
        r = c.get(
            f"/api/state/{seg(service)}/{seg(key)}",
            {"invocation": invocation, "entry": entry if invocation else None},
        )
    st = r["state"]
    if name is not None:
        if name not in st:
            fail(f"{service}/{key} has no state entry {name!r}")
        if json_:
            emit_json(st[name])
        else:
            out.print(json.dumps(st[name], ensure_ascii=False), markup=False)
        return
    if json_:
        emit_json(r)
        return
    if not st:
        out.print(f"{escape(service)}/{escape(key)} has no state")
        return
    t = Table(box=None, pad_edge=False)
    t.add_column("NAME", no_wrap=True)
    t.add_column("VALUE", overflow="fold")
    for k, v in st.items():
        t.add_row(escape(k), escape(json.dumps(v, ensure_ascii=False)))
    out.print(t)
    if r["as_of"]:
        out.print(f"as of {r['as_of']['invocation_id']} entry {r['as_of']['entry']}")


@app.command("set")
def set_(
    service: ServiceArg,
    key: KeyArg,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The state entry.")],
    value: Annotated[
        str | None,
        typer.Argument(metavar="VALUE", help="Its new value, as JSON (quote strings: '\"x\"')."),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the entry instead.")] = False,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Set (or --clear) one state entry of a key, as a person outside any invocation."""
    if clear == (value is not None):
        fail("give a VALUE (JSON), or --clear")
    body: dict = {"name": name, "clear": True}
    if not clear:
        try:
            body = {"name": name, "value": json.loads(value or "")}
        except ValueError:
            fail(f"VALUE must be JSON, e.g. 42, true, '\"text\"' or '{{\"a\": 1}}' (got {value!r})")
    with session(url, None, True, "state set", restate) as c:
        r = c.post(f"/api/state/{seg(service)}/{seg(key)}", body)
    if json_:
        emit_json(r)
    else:
        out.print(f"{'cleared' if clear else 'set'} {escape(service)}/{escape(key)} {escape(name)}")


@app.command("ls")
def ls(
    service: ServiceArg,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List the keys of an object or workflow that hold state."""
    with session(url, store, False, "state ls", restate) as c:
        r = c.get(f"/api/state/{seg(service)}")
    if json_:
        emit_json(r)
        return
    if not r["keys"]:
        out.print(f"{escape(service)} has no state")
        return
    t = Table(box=None, pad_edge=False)
    t.add_column("KEY", overflow="fold")
    t.add_column("ENTRIES", justify="right")
    for k in r["keys"]:
        t.add_row(escape(k["key"]), str(k["entries"]))
    out.print(t)
