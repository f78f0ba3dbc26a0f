"""`durable tui`: the terminal UI, against a runtime here or elsewhere (``--url``)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..client import DEFAULT_STORE, DEFAULT_URL, _health, _holder_url
from ._common import UrlOpt

__all__ = ["tui"]


def tui(
    url: UrlOpt = None,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between refreshes.", min=0.2)
    ] = 1.0,
) -> None:
    """A terminal UI: live invocations, journals with state, awakeables, object state, the log."""
    from ..tui import run

    run(_find_url(url), interval)


def _find_url(url: str | None) -> str:
    """``--url``; else the runtime holding this folder's store (its holder file names
    it), if it answers; else the default (the TUI then waits for a runtime to come up)."""
    if url:
        return url
    held = _holder_url(DEFAULT_STORE)
    if held and _health(held) is not None:
        return held
    return DEFAULT_URL
