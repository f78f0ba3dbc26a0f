"""`durable invocations ls|show|cancel|kill|purge|pause|resume|replay|restart`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..client import Client
from ._common import (
    JsonOpt,
    RestateOpt,
    StoreOpt,
    UrlOpt,
    YesOpt,
    emit_json,
    err,
    fail,
    out,
    seg,
    session,
    short,
    when,
)

__all__ = ["app"]

app = typer.Typer(
    help="List, inspect and act on invocations (one, or all matching a filter).",
    no_args_is_help=True,
)

StatusOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--status",
        help="Only these statuses (repeat, or separate with commas): pending, scheduled, "
        "ready, running, suspended, backing-off, paused, completed, failed, killed, "
        "cancelled.",
        show_default=False,
    ),
]
ServiceOpt = Annotated[str | None, typer.Option("--service", help="Only this service.")]
HandlerOpt = Annotated[str | None, typer.Option("--handler", help="Only this handler.")]
KeyOpt = Annotated[str | None, typer.Option("--key", help="Only this object key or workflow id.")]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Created at or after: an ISO time, or an age (10m, 2h, 1d)."),
]
UntilOpt = Annotated[
    str | None,
    typer.Option("--until", help="Created before: an ISO time, or an age (10m, 2h, 1d)."),
]
IdTextOpt = Annotated[str | None, typer.Option("--id", help="Only ids that contain this text.")]
SearchOpt = Annotated[
    str | None,
    typer.Option(
        "--search",
        help="Only invocations whose id, input, output or error contains this text "
        "(any case; reads every row: slower on big stores).",
    ),
]
AllOpt = Annotated[
    bool, typer.Option("--all", help="Every invocation (or every one matching the filters).")
]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="The invocation id (inv_...).")]
OptIdArg = Annotated[
    str | None,
    typer.Argument(metavar="ID", help="One invocation id; or use filters for many."),
]

_PAGE = 1000


def _params(
    status: list[str] | None,
    service: str | None,
    handler: str | None,
    key: str | None,
    since: str | None,
    until: str | None,
    id_text: str | None,
    search: str | None = None,
) -> dict[str, Any]:
    statuses = [s.strip() for v in status or [] for s in v.split(",") if s.strip()]
    return {
        "status": ",".join(statuses) or None,
        "service": service,
        "handler": handler,
        "key": key,
        "since": since,
        "until": until,
        "id": id_text,
        "q": search,
    }


def _describe(params: dict[str, Any]) -> str:
    shown = [f"{k if k != 'q' else 'text'}={v}" for k, v in params.items() if v]
    return " ".join(shown) or "(all)"


def _matching_ids(c: Client, params: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        page = c.get("/api/invocations", {**params, "limit": _PAGE, "after": after})
        ids.extend(i["id"] for i in page["invocations"])
        after = page["next"]
        if after is None:
            return ids


# ---------------------------------------------------------------------------- ls
@app.command("ls")
def ls(
    status: StatusOpt = None,
    service: ServiceOpt = None,
    handler: HandlerOpt = None,
    key: KeyOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    id_text: IdTextOpt = None,
    search: SearchOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows per page.")] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="Show the page after this id (older).")
    ] = None,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List invocations, newest first, with what each waits on."""
    params = _params(status, service, handler, key, since, until, id_text, search)
    with session(url, store, False, "invocations ls", restate) as c:
        page = c.get("/api/invocations", {**params, "limit": limit, "after": after, "count": 1})
    if json_:
        emit_json(page)
        return
    items = page["invocations"]
    if not items:
        out.print(
            "no invocations" + (f" matching {_describe(params)}" if any(params.values()) else "")
        )
        if page.get("note"):
            out.print(f"[yellow]{escape(page['note'])}[/yellow]")
        return
    t = Table(box=None, pad_edge=False)
    for col in ("ID", "TARGET", "KEY", "STATUS", "CREATED", "WAITS ON / ERROR"):
        t.add_column(col, no_wrap=col in ("ID", "STATUS"), overflow="fold")
    for i in items:
        note = i["waits_on"] or i["last_error"] or (i["failure"] or {}).get("message") or ""
        if i["restarted_from"]:
            note = f"restarted from {i['restarted_from']}" + (f"; {note}" if note else "")
        t.add_row(
            i["id"],
            escape(f"{i['service']}/{i['handler']}"),
            escape(i["key"] or ""),
            i["status"],
            when(i["created_at"], ms=False),
            escape(short(note, 60)),
        )
    out.print(t)
    more = f"; next page: --after {page['next']}" if page["next"] else ""
    total = f"{page.get('total', len(items))}" + ("+" if page.get("total_since") else "")
    out.print(f"{len(items)} of {total}{more}")
    if page.get("note"):
        out.print(f"[yellow]{escape(page['note'])}[/yellow]")


# ---------------------------------------------------------------------------- show
@app.command("show")
def show(
    inv_id: IdArg,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show one invocation: its request, status, waits and journal, entry by entry.

    Each entry comes with its payload, result or failure, timings, and (for objects and
    workflows) the key's state just after it.
    """
    with session(url, store, False, "invocations show", restate) as c:
        inv = c.get(f"/api/invocations/{seg(inv_id)}")
    if json_:
        emit_json(inv)
        return
    target = f"{inv['service']}/{inv['handler']}" + (f" key {inv['key']!r}" if inv["key"] else "")
    out.print(f"[bold]{inv['id']}[/bold]  {escape(target)}  [bold]{inv['status']}[/bold]")
    origin = inv.get("origin")
    if origin:
        out.print(
            f"  pulled from:      Restate cluster {origin['cluster']}, id {origin['remote_id']} "
            f"({origin['remote_status']} there), at {when(origin['pulled_at'], ms=False)} UTC; "
            "a read-only copy: replay it, or restart it from an entry",
            markup=False,
        )
        if origin.get("state") is not None:
            out.print(
                f"  cluster state:    {short(origin['state'], 200)} (its key's, when pulled)",
                markup=False,
            )
    facts = [
        ("created", when(inv["created_at"])),
        ("completed", when(inv["completed_at"])),
        ("attempt", str(inv["attempt"])),
        ("idempotency key", inv["idempotency_key"] or ""),
        (
            "called by" if (inv.get("caller") or {}).get("kind") != "send" else "sent by",
            _caller(inv),
        ),
        ("restarted from", inv["restarted_from"] or ""),
        ("waits on", inv["waits_on"] or ""),
        ("queue position", str(inv["queue_position"]) if inv.get("queue_position") else ""),
        ("next retry", when(inv["next_retry_at"])),
        ("last error", inv["last_error"] or ""),
        ("output", short(inv["output_value"], 200) if inv["output"] is not None else ""),
        (
            "failure",
            f"{inv['failure']['code']} {inv['failure']['message']}" if inv["failure"] else "",
        ),
        ("actions", ", ".join(inv.get("actions") or [])),  # what the runtime allows now
        ("request headers", short(inv["request"]["headers"], 200)),
        ("request body", short(inv["request"]["body"], 200)),
    ]
    for name, value in facts:
        if value:
            out.print(f"  {name + ':':17} {escape(value)}")
    t = Table(title="journal", box=None, pad_edge=False, title_justify="left")
    for col in ("#", "KIND", "NAME", "PAYLOAD", "RESULT", "AT", "MS", "STATE AFTER"):
        t.add_column(col, overflow="fold", no_wrap=col in ("#", "MS"))
    previous = None
    for e in inv["journal"]:
        result = (
            f"failed {e['failure']['code']}: {e['failure']['message']}"
            if e["failure"]
            else short(e["result"], 30)
            if e["completed"]
            else "(waiting)"
        )
        st = e.get("state")
        state_text = "" if st is None else ("=" if st == previous else short(st, 40))
        previous = st if st is not None else previous
        t.add_row(
            str(e["index"]),
            e["kind"],
            escape(e["name"] or ""),
            escape(short(e["payload"], 30)),
            escape(result),
            when(e["created_at"])[11:],
            "" if e["duration_ms"] is None else f"{e['duration_ms']:.1f}",
            escape(state_text),
        )
    out.print(t)
    if inv.get("journal_note"):  # a Restate cluster's: why the journal is empty
        out.print(f"note: {escape(inv['journal_note'])}")
    if any(e.get("state") is not None for e in inv["journal"]):
        out.print('state "=": unchanged since the entry before')
    children = [e for e in inv["journal"] if e.get("child_id")]
    if children:
        out.print("calls and sends (the whole tree: durable invocations tree ID):")
    for e in children:
        verb = "calls" if e["kind"] == "call" else "sends to"
        out.print(f"  entry {e['index']} {verb} {escape(e['name'] or '')}: {e['child_id']}")

    _show_attempts(inv.get("attempts") or [])
    _show_logs(inv.get("logs") or [])


def _show_attempts(attempts: list[dict[str, Any]]) -> None:
    """Every failed attempt in one line, then the last one's stack trace."""
    if not attempts:
        return
    t = Table(title="failed attempts", box=None, pad_edge=False, title_justify="left")
    for col in ("#", "STARTED", "MS", "THEN", "WHERE", "ERROR"):
        t.add_column(col, overflow="fold", no_wrap=col in ("#", "MS", "THEN"))
    for a in attempts:
        t.add_row(
            str(a["attempt"]),
            when(a["started_at"])[11:],
            f"{a['ms']:.1f}",
            a["outcome"],
            escape(a["location"] or ""),
            escape(short(a["error"], 80)),
        )
    out.print(t)
    last = attempts[-1]
    if last.get("stack"):
        out.print(f"last stack trace (attempt {last['attempt']}):")
        out.print(escape(last["stack"].rstrip()), highlight=False)


def _show_logs(logs: list[dict[str, Any]]) -> None:
    if not logs:
        return
    out.print(f"logs ({len(logs)} lines, printed or logged by the handler):")
    for g in logs:
        level = f" {g['level']}" if g["level"] else ""
        stream = " stderr" if g["stream"] == "stderr" else ""
        out.print(
            f"  {when(g['at'])[11:]} #{g['attempt']}{level}{stream} {escape(g['message'])}",
            highlight=False,
        )


# ---------------------------------------------------------------------------- tree
@app.command("tree")
def tree(
    inv_id: IdArg,
    limit: Annotated[int, typer.Option("--limit", help="Invocations at most.")] = 500,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show the call tree an invocation belongs to: its root caller and every descendant."""
    with session(url, store, False, "invocations tree", restate) as c:
        t = c.get(f"/api/invocations/{seg(inv_id)}/tree", {"limit": limit})
    if json_:
        emit_json(t)
        return
    for n in t["nodes"]:
        how = "" if n["via"] == "root" else f"  {n['via']} from entry {n['entry']}"
        mark = "  <" if n["id"] == t["focus"] else ""
        target = escape(f"{n['service']}/{n['handler']}" + (f" {n['key']!r}" if n["key"] else ""))
        out.print(
            f"{'  ' * n['depth']}{n['id']}  {target}  {n['status']}{how}{mark}", soft_wrap=True
        )
    if t.get("note"):
        out.print(f"[yellow]{escape(t['note'])}[/yellow]")


def _caller(inv: dict[str, Any]) -> str:
    c = inv.get("caller")
    if c:
        return f"{c['id']} entry {c['entry']}"
    if inv.get("parent_id"):
        return f"{inv['parent_id']} entry {inv['parent_entry']}"
    return ""


# ---------------------------------------------------------------------------- actions
_ACTION_HELP = {
    "cancel": "Cancel: the handler gets a CancelledError at its next await and may compensate.",
    "kill": "Kill at once, without compensation (also kills the calls it waits on).",
    "purge": "Delete finished invocations with their journals.",
    "pause": "Pause: stop retrying (and stop the running attempt) until resumed.",
    "resume": "Resume paused or backing-off invocations now (retry now).",
}
_CONFIRM = {"cancel", "kill", "purge"}


def _make_action(name: str) -> None:
    def command(
        inv_id: OptIdArg = None,
        status: StatusOpt = None,
        service: ServiceOpt = None,
        handler: HandlerOpt = None,
        key: KeyOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        id_text: IdTextOpt = None,
        all_: AllOpt = False,
        yes: YesOpt = False,
        url: UrlOpt = None,
        restate: RestateOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        params = _params(status, service, handler, key, since, until, id_text)
        _act(name, inv_id, params, all_, yes, url, json_, restate)

    app.command(
        name,
        help=_ACTION_HELP[name]
        + " Give one ID, or filters (or --all) to act on every matching invocation"
        + (" after a confirmation (--yes skips it)." if name in _CONFIRM else "."),
    )(command)


def _act(
    name: str,
    inv_id: str | None,
    params: dict[str, Any],
    all_: bool,
    yes: bool,
    url: str | None,
    json_: bool,
    restate: str | None = None,
) -> None:
    filtered = any(params.values())
    if inv_id is not None and (filtered or all_):
        fail("give one invocation ID, or filters, not both")
    with session(url, None, True, f"invocations {name}", restate) as c:
        if inv_id is not None:
            r = c.post(f"/api/invocations/{seg(inv_id)}/{name}")
            emit_json(r) if json_ else out.print(f"{r['id']}: {r.get('message') or r['status']}")
            return
        if not filtered and not all_:
            fail(
                f"give an invocation ID, or filters (--status, --service, ...), or --all "
                f"to {name} many"
            )
        ids = _matching_ids(c, params)
        if not ids:
            emit_json({"action": name, "done": [], "failed": []}) if json_ else out.print(
                f"no invocation matches {_describe(params)}"
            )
            return
        if name in _CONFIRM and not yes:
            ok = typer.confirm(f"{name} {len(ids)} invocation(s) matching {_describe(params)}?")
            if not ok:
                fail("aborted: nothing was changed")
        done: list[dict] = []
        failed: list[dict] = []
        for i in range(0, len(ids), _PAGE):
            r = c.post("/api/invocations/bulk", {"action": name, "ids": ids[i : i + _PAGE]})
            done += r["done"]
            failed += r["failed"]
    if json_:
        emit_json({"action": name, "done": done, "failed": failed})
    else:
        for f in failed:
            err.print(f"{f['id']}: {f['message']}", markup=False)
        out.print(f"{name}: {len(done)} done, {len(failed)} refused")
    if failed:
        raise typer.Exit(1)


for _name in ("cancel", "kill", "purge", "pause", "resume"):
    _make_action(_name)


# ---------------------------------------------------------------------------- replay
def _replay_line(r: dict[str, Any]) -> str:
    head = f"{r['id']}"
    if r.get("service"):
        head += f" {r['service']}/{r['handler']}"
    if r["outcome"] == "divergence":
        where = f" at {r['location']}" if r.get("location") else ""
        return (
            f"{head}: DIVERGES at entry {r['index']}: recorded {r['recorded']}, "
            f"the code asks for {r['requested']}{where}"
        )
    if r["outcome"] == "match":
        n = r["entries_checked"]
        return f"{head}: matches (entries 1-{n} as recorded; {r['stopped']})"
    return f"{head}: {r['outcome'].upper()}: {r['message']}"


@app.command("replay")
def replay(
    inv_id: OptIdArg = None,
    all_: AllOpt = False,
    status: StatusOpt = None,
    service: ServiceOpt = None,
    handler: HandlerOpt = None,
    key: KeyOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    id_text: IdTextOpt = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds one replay may take.")
    ] = 10.0,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Check recorded journals against the current code, with no side effects.

    The worker runs the handler with the recorded results (no ctx.run body runs, nothing
    is written) and reports a match or the first divergence: entry, what was recorded,
    what the code asks for, file and line. Exits with 1 if any invocation diverges.
    """
    params = _params(status, service, handler, key, since, until, id_text)
    filtered = any(params.values())
    if inv_id is not None and (filtered or all_):
        fail("give one invocation ID, or --all / filters, not both")
    if inv_id is None and not (filtered or all_):
        fail("give an invocation ID, or --all (optionally with filters)")
    with session(url, None, True, "invocations replay", restate) as c:
        if inv_id is not None:
            r = c.post(f"/api/invocations/{seg(inv_id)}/replay", {"timeout": timeout})
            emit_json(r) if json_ else out.print(escape(_replay_line(r)))
            if r["outcome"] != "match":
                raise typer.Exit(1)
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        ids = _matching_ids(c, params)
        results: list[dict] = []
        with Progress(
            TextColumn("replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("replay", total=len(ids))
            for i in range(0, len(ids), 50):
                batch = c.post("/api/replay", {"ids": ids[i : i + 50], "timeout": timeout})
                for r in batch["results"]:
                    results.append(r)
                    if r["outcome"] != "match" and not json_:
                        out.print(escape(_replay_line(r)))
                progress.advance(task, len(batch["results"]))
    counts: dict[str, int] = {}
    for r in results:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    if json_:
        emit_json({"checked": len(results), "counts": counts, "results": results})
    else:
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to replay"
        out.print(f"replayed {len(results)}: {summary}")
    if counts.get("divergence"):
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- restart
@app.command("restart")
def restart(
    inv_id: IdArg,
    from_: Annotated[
        int,
        typer.Option("--from", help="The first entry to re-execute (entries before it are kept)."),
    ],
    kill: Annotated[
        bool, typer.Option("--kill", help="Kill the original first if it has not finished.")
    ] = False,
    url: UrlOpt = None,
    restate: RestateOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Restart an invocation from entry N with today's code, as a new invocation.

    The new invocation (linked by restarted_from) keeps entries 0..N-1 with their results
    and re-executes the rest. Object and workflow state is NOT rewound: it continues from
    the key's current state. Refused when an entry before N is not completed. A copy
    pulled from Restate (durable pull) is replayed first: see docs/cluster.md.
    """
    with session(url, None, True, "invocations restart", restate) as c:
        r = c.post(f"/api/invocations/{seg(inv_id)}/restart", {"from": from_, "kill": kill})
    if json_:
        emit_json(r)
        return
    killed = " (the original was killed)" if r["killed_original"] else ""
    out.print(f"restarted {r['restarted_from']} from entry {r['from']} as {r['id']}{killed}")
    if r.get("state"):
        out.print(escape(r["state"]))
    if r.get("journal"):
        out.print(escape(r["journal"]))
