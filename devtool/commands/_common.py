"""What every `durable` command that talks to a runtime shares: options, output, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import typer
from rich.console import Console

from ..client import DEFAULT_STORE, DEFAULT_URL, Client, CliError, connect, connect_cluster

__all__ = [
    "UrlOpt",
    "StoreOpt",
    "RestateOpt",
    "JsonOpt",
    "YesOpt",
    "out",
    "err",
    "fail",
    "emit_json",
    "session",
    "seg",
    "short",
    "when",
]

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="DURABLE_URL",
        help=f"Admin API of the runtime to talk to (default {DEFAULT_URL}).",
        show_default=False,
    ),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help=f"Store file to read read-only when no runtime runs (default {DEFAULT_STORE}).",
        show_default=False,
    ),
]
RestateOpt = Annotated[
    str | None,
    typer.Option(
        "--restate",
        envvar="DURABLE_RESTATE_URL",
        help="Admin API of a Restate cluster to read and act on instead of a durable "
        "runtime (e.g. http://restate:9070).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

# Piped output is not wrapped at 80 columns (ids and JSON stay on one line).
out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@contextmanager
def session(
    url: str | None,
    store: str | None,
    need_runtime: bool,
    what: str,
    restate: str | None = None,
) -> Iterator[Client]:
    """A client for one command (of the Restate cluster ``restate``, when given); errors
    become ``error: ...`` and exit code 1."""
    if restate and store:
        fail("give --restate (a Restate cluster) or --store (a local store), not both")
    try:
        client = (
            connect_cluster(restate, what) if restate else connect(url, store, need_runtime, what)
        )
    except CliError as e:
        fail(e.message)
    if client.note:
        err.print(f"[durable] {client.note}", markup=False)
    broken = client.health.get("app_error")
    if isinstance(broken, dict):
        err.print(
            f"[durable] the app does not load (since {when(broken.get('since'), ms=False)} "
            f"UTC): {broken.get('summary')}; its invocations wait until the file is fixed",
            markup=False,
        )
    try:
        yield client
    except CliError as e:
        fail(e.message)
    finally:
        client.close()


def seg(text: str) -> str:
    """One URL path segment."""
    return quote(text, safe="")


def short(value: Any, width: int = 40) -> str:
    """A JSON value on one line, cut to ``width`` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def when(iso: str | None, ms: bool = True) -> str:
    """An ISO time from the API, shown as 'YYYY-MM-DD HH:MM:SS[.mmm]' (UTC)."""
    if not iso:
        return ""
    return iso.replace("T", " ").rstrip("Z")[: 23 if ms else 19]
