"""The `durable` command line (typer): `durable dev` and the commands that talk to it.

`durable dev` starts fast: the other commands (and what they import) are registered
only when typer parses the command line, and `dev`'s own arguments are parsed without
typer when they are plain (see :func:`_plain_dev_args`).
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import types
import typing
from typing import Annotated, Any

import typer

from .discovery import bundled_example, default_app

__all__ = ["app", "main"]  # noqa: F822 (app: module __getattr__, registered lazily)

_app = typer.Typer(
    help="durable: a local durable-execution runtime for Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _project_config(cwd: str) -> dict:
    """``[tool.durable]`` of ``pyproject.toml`` in ``cwd`` (empty when absent)."""
    path = os.path.join(cwd, "pyproject.toml")
    if not os.path.isfile(path):
        return {}
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f).get("tool", {}).get("durable", {})
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise typer.BadParameter(f"cannot read [tool.durable] in {path}: {e}") from None


@_app.command()
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
    no_restate_alias: Annotated[
        bool,
        typer.Option(
            "--no-restate-alias",
            help="Let `import restate` in the app load the real restate-sdk, not durable's.",
        ),
    ] = False,
) -> None:
    """Run the runtime, a worker with your app, the ingress and the admin API."""
    cfg = _project_config(os.getcwd())
    spec = app_spec or cfg.get("app") or default_app(os.getcwd()) or bundled_example()
    if not inline and not tui:
        # the worker starts (interpreter, imports, the app) while this process imports the
        # runtime and opens the store, instead of after
        from .workers import prespawn_worker

        prespawn_worker(spec, suspend_after, not no_restate_alias)
    from .runtime import RuntimeOptions, run_dev

    if tui:  # the runtime on a thread, the TUI in this terminal
        from .tui.dev import run_dev_tui

        run_dev = run_dev_tui
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
            restate_alias=not no_restate_alias,
        )
    )
    raise typer.Exit(code)


@_app.command()
def version() -> None:
    """Print the version."""
    from durable import __version__

    print(__version__)


_registered = False


def _full_app() -> typer.Typer:
    """The app with every command (registering them imports rich, httpx, ...)."""
    global _registered
    if not _registered:
        from .commands import register

        register(_app)
        _registered = True
    return _app


def __getattr__(name: str) -> Any:
    if name == "app":  # `from durable.devtool.cli import app`: the whole command line
        return _full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _NeedsTyper(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise _NeedsTyper(message)


def _plain_dev_args(argv: list[str]) -> dict[str, Any] | None:
    """`durable dev`'s keyword arguments parsed from ``argv`` with argparse, from the
    same signature typer reads; None when typer must parse them (--help, an error, a
    parameter type this does not know), so typer's messages stay the only ones.

    Why: typer (0.29) coerces each parameter through a pydantic TypeAdapter; importing
    pydantic and building the adapters is ~0.3 s of `durable dev`'s start-up (more on
    a busy machine), for twelve plain options."""
    if any(a in ("--help", "-h") or a.startswith("--help") for a in argv):
        return None
    hints = typing.get_type_hints(dev, include_extras=True)
    parser = _Parser(prog="durable dev", add_help=False, allow_abbrev=False)
    for name, param in inspect.signature(dev).parameters.items():
        hint = hints[name]
        meta = next(
            (
                m
                for m in getattr(hint, "__metadata__", ())
                if isinstance(m, typer.models.ParameterInfo)
            ),
            None,
        )
        tp = typing.get_args(hint)[0] if meta is not None else hint
        if type(tp) is types.UnionType or typing.get_origin(tp) is typing.Union:
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return None
            tp = args[0]
        default = param.default
        if tp not in (str, int, float, bool) or meta is None or default is param.empty:
            return None
        if isinstance(meta, typer.models.ArgumentInfo):
            parser.add_argument(name, nargs="?", type=tp, default=default)
            continue
        decls = [d for d in (meta.param_decls or ()) if d.startswith("-")]
        if isinstance(meta.default, str) and meta.default.startswith("-"):
            decls.insert(0, meta.default)  # Annotated style: typer.Option("--flag", ...)
        if tp is bool:
            if decls:  # an explicit flag: it sets True (e.g. --no-reload)
                parser.add_argument(*decls, dest=name, action="store_true", default=default)
            else:  # typer's --name/--no-name pair
                parser.add_argument(
                    "--" + name.replace("_", "-"),
                    dest=name,
                    action=argparse.BooleanOptionalAction,
                    default=default,
                )
            continue
        parser.add_argument(
            *(decls or ["--" + name.replace("_", "-")]), dest=name, type=tp, default=default
        )
    try:
        return vars(parser.parse_args(argv))
    except _NeedsTyper:
        return None


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["dev"]:
        kwargs = _plain_dev_args(argv[1:])
        if kwargs is not None:
            try:
                dev(**kwargs)
            except typer.Exit as e:
                sys.exit(e.exit_code)
            except typer.BadParameter:
                pass  # typer parses again and reports it its way
    _full_app()()


if __name__ == "__main__":
    main()
