"""`durable pull ID --restate URL`: copy an invocation from a Restate cluster into the store."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Annotated

import typer

from ..client import DEFAULT_STORE, Client, CliError, runtime_for_store
from ._common import JsonOpt, emit_json, err, fail, out

if TYPE_CHECKING:
    from ..pulled import PulledCopy

__all__ = ["pull"]

RestateOpt = Annotated[
    str | None,
    typer.Option(
        "--restate",
        envvar="DURABLE_RESTATE_URL",
        help="Admin API of the Restate cluster to pull from (e.g. http://restate:9070).",
        show_default=False,
    ),
]
PullStoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help=f"Store to copy into (default {DEFAULT_STORE}); when a runtime holds it, the "
        "copy goes through that runtime.",
        show_default=False,
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace a copy pulled before (the same remote id).")
]


def pull(
    inv_id: Annotated[
        str, typer.Argument(metavar="ID", help="The invocation's id on the cluster (inv_...).")
    ],
    restate: RestateOpt = None,
    store: PullStoreOpt = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Copy an invocation from a Restate cluster into the local store, to replay it here.

    Reads (and never writes) the cluster: the invocation's row, its journal, its input and
    headers, and the state of its key now. The copy is a finished, read-only invocation
    marked with where it came from; `durable invocations replay ID` checks it against the
    local code and `durable invocations restart ID --from N` runs it here from entry N.
    """
    from ..pull import PullError, check_remote_id, read_invocation, summary

    if not restate:
        fail("give the cluster's admin API: --restate http://restate:9070 (or DURABLE_RESTATE_URL)")
    try:
        check_remote_id(inv_id)
    except PullError as e:
        fail(e.message)
    path = os.path.abspath(store or DEFAULT_STORE)
    runtime = runtime_for_store(path)
    try:
        copy = read_invocation(restate, inv_id)
    except PullError as e:
        fail(e.message)
    if runtime is not None:
        url, health = runtime
        err.print(f"[durable] writing through the runtime at {url} (it holds {path})", markup=False)
        try:
            with Client(url, health) as c:
                done = c.post("/api/invocations/import", {"copy": copy.to_json(), "force": force})
        except CliError as e:
            fail(e.message)
    else:
        done = _save_here(path, copy, force)
    if json_:
        emit_json(done)
        return
    again = " (replacing the earlier copy)" if done["replaced"] else ""
    out.print(
        f"pulled {copy.remote_id} from {copy.cluster} as {done['id']}{again}: {summary(copy)}",
        markup=False,
    )
    out.print(
        f"replay it against this code: durable invocations replay {done['id']}   "
        f"(run it from entry N: durable invocations restart {done['id']} --from N)",
        markup=False,
    )


def _save_here(path: str, copy: PulledCopy, force: bool) -> dict:
    """Open the store (no runtime holds it) and write the copy."""
    from ..errors import DevtoolError, RequestError
    from ..pulled import save_copy
    from ..store import Store

    try:
        s = Store.open(path, {"what": "durable pull"})
    except DevtoolError as e:
        fail(f"cannot open the store {path}: {e}")

    async def save() -> dict:
        return await save_copy(s, copy, force)

    try:
        return asyncio.run(save())
    except RequestError as e:
        fail(e.message)
    finally:
        s.close()
