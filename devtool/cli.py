"""The `durable` command line (typer): `durable dev` and the commands that talk to it."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .discovery import bundled_example, default_app

__all__ = ["app", "main"]

app = typer.Typer(
    help="durable: a local durable-execution runtime for Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _project_config(cwd: str) -> dict:
    """``[tool.durable]`` of ``pyproject.toml`` in ``cwd`` (empty when absent)."""
    import tomllib

    path = os.path.join(cwd, "pyproject.toml")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f).get("tool", {}).get("durable", {})
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise typer.BadParameter(f"cannot read [tool.durable] in {path}: {e}") from None


@app.command()
def dev(
    app_spec: Annotated[
        str | None,
        typer.Argument(
            metavar="[APP]",
            help="The app: a file, a module, a package, or module:attribute. Default: "
            "[tool.durable] app in pyproject.toml, else app.py/main.py in this folder, "
            "else the bundled example.",
        ),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Ingress port (8080).")] = None,
    admin_port: Annotated[
        int | None, typer.Option(help="Admin API and dashboard port (9070).")
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="DuckDB file (.durable/durable.duckdb), or :memory:.")
    ] = None,
    inline: Annotated[
        bool, typer.Option(help="Run handlers in the runtime process (breakpoints).")
    ] = False,
    no_reload: Annotated[
        bool, typer.Option("--no-reload", help="Do not reload on file changes.")
    ] = False,
    host: Annotated[
        str, typer.Option(help="Address to bind (127.0.0.1 by default).")
    ] = "127.0.0.1",
    suspend_after: Annotated[
        float,
        typer.Option(help="Seconds a handler may wait on a completion before it is suspended."),
    ] = 1.0,
    max_body: Annotated[int, typer.Option(help="Largest request body, in bytes.")] = 10
    * 1024
    * 1024,
    verbose: Annotated[bool, typer.Option(help="Print a line per invocation.")] = False,
    hang_deadline: Annotated[
        float,
        typer.Option(help="Seconds the worker may stop answering heartbeats before it is killed."),
    ] = 10.0,
    tui: Annotated[
        bool, typer.Option("--tui", help="Show the terminal UI here; console lines go to its log.")
    ] = False,
) -> None:
    """Run the runtime, a worker with your app, the ingress and the admin API."""
    from .runtime import RuntimeOptions, run_dev

    if tui:  # the runtime on a thread, the TUI in this terminal
        from .tui.dev import run_dev_tui

        run_dev = run_dev_tui
    cfg = _project_config(os.getcwd())
    spec = app_spec or cfg.get("app") or default_app(os.getcwd()) or bundled_example()
    if spec == bundled_example() and app_spec is None:
        print("[durable] no app given and none in this folder: serving the bundled example")
    watch = cfg.get("watch")
    if isinstance(watch, str):
        watch = [watch]
    code = run_dev(
        RuntimeOptions(
            app=spec,
            host=host,
            port=port if port is not None else int(cfg.get("port", 8080)),
            admin_port=admin_port if admin_port is not None else int(cfg.get("admin_port", 9070)),
            store=store or cfg.get("store", ".durable/durable.duckdb"),
            inline=inline,
            reload=not no_reload,
            suspend_after=suspend_after,
            max_body=max_body,
            verbose=verbose,
            watch=[os.path.abspath(w) for w in watch] if watch else None,
            hang_deadline=hang_deadline,
        )
    )
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    from durable import __version__

    print(__version__)


def _register() -> None:
    from .commands import register

    register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
