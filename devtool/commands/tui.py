"""`durable tui`: the terminal UI, against a runtime here or elsewhere (``--url``), or a
Restate cluster (``--restate``: durable's admin API over it, in this process)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ..client import DEFAULT_STORE, DEFAULT_URL, _health, _holder, _holder_url, _serves
from ._common import RestateOpt, UrlOpt, err, fail

__all__ = ["tui"]


def tui(
    url: UrlOpt = None,
    restate: RestateOpt = None,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between refreshes.", min=0.2)
    ] = 1.0,
) -> None:
    """A terminal UI: live invocations, journals with state, awakeables, object state, the log."""
    if restate:
        if url:  # DURABLE_URL may be exported: the cluster asked for wins
            err.print(f"[durable] --restate given: not using --url/DURABLE_URL {url}", markup=False)
        _cluster_tui(restate.rstrip("/"), interval)
        return
    from ..tui import run

    run(_find_url(url), interval)


def _cluster_tui(restate: str, interval: float) -> None:
    """The TUI over the Restate cluster at ``restate``; exit 1 when it does not answer."""
    import asyncio

    from ..tui.app import TuiApp
    from .dashboard import check_cluster, cluster_transport

    if not restate.startswith(("http://", "https://")):
        fail(f"{restate!r} is not an http(s) URL: give one like http://127.0.0.1:9070")
    try:
        asyncio.run(check_cluster(restate, cluster_transport(restate)))
    except RuntimeError as e:
        fail(str(e))
    app = TuiApp(restate, interval=interval, transport=cluster_transport(restate), cluster=restate)
    app.run()


def _find_url(url: str | None) -> str:
    """``--url``; else the runtime holding this folder's store (its holder file names
    it), if it answers; else the default URL, unless a runtime there serves another
    project's store (then say so and exit); with none up the TUI waits for one."""
    if url:
        return url
    path = os.path.abspath(DEFAULT_STORE)
    holder = _holder(path)
    held = _holder_url(path)
    if held and _health(held) is not None:
        return held
    health = _health(DEFAULT_URL)
    in_project = os.path.exists(path) or bool(holder)
    if health is not None and in_project and not _serves(health, path, holder):
        fail(
            f"no runtime runs for this folder's store {path}; the runtime at {DEFAULT_URL} "
            f"serves another store ({health.get('store')}): start `durable dev` here, or "
            f"watch that one with --url {DEFAULT_URL}"
        )
    return DEFAULT_URL
