"""`durable serve`: the app's services as a Restate deployment (restate-sdk, hypercorn)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ._common import fail

__all__ = ["serve", "EXTRA_HINT"]

EXTRA_HINT = "pip install 'durable[restate]'"


def serve(
    app_spec: Annotated[
        str | None,
        typer.Argument(
            metavar="[APP]",
            help="The app, as for `durable dev`: a file, a module, a package, or "
            "module:attribute. Default: the app of pyproject.toml's tool.durable table, else "
            "app.py/main.py in this folder, else the bundled example.",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind (127.0.0.1 by default).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port of the deployment (9080).", min=1, max=65535)
    ] = 9080,
    http1: Annotated[
        bool,
        typer.Option(
            "--http1",
            help="HTTP/1.1 request-response instead of HTTP/2 (register with use_http_11).",
        ),
    ] = False,
) -> None:
    """Serve the app's services to a Restate cluster, on the real restate-sdk (HTTP/2)."""
    try:
        import hypercorn  # noqa: F401
        import restate

        if not hasattr(restate, "app") or "durable" in (getattr(restate, "__file__", "") or ""):
            raise ImportError("`import restate` is not restate-sdk")
    except ImportError as e:
        fail(f"durable serve needs restate-sdk and hypercorn ({e}): {EXTRA_HINT}")
    from ..cli import _project_config
    from ..discovery import RestateAppError, bundled_example, default_app, load_app
    from ..errors import AppLoadError

    cfg = _project_config(os.getcwd())
    spec = app_spec or cfg.get("app") or default_app(os.getcwd()) or bundled_example()
    try:
        services = load_app(spec)
    except RestateAppError:
        fail(
            f"{spec} is a restate-sdk app (it imports the real `restate`): it is a Restate "
            "deployment already, so serve it as one (python -m hypercorn MODULE:app); "
            "durable serve serves apps written with `import durable`"
        )
    except AppLoadError as e:
        fail(f"cannot serve {spec}: {e}")
    from ..serve.adapter import refusals, restate_services_defined

    problems = refusals(services)
    foreign = restate_services_defined()
    if foreign:
        problems.append(
            f"{spec} also defines restate-sdk services ({', '.join(foreign)}): durable serve "
            "serves durable ones only; write them with `import durable`, or serve them "
            "from their own restate-sdk deployment"
        )
    if problems:
        fail(
            "durable serve cannot carry these over to Restate (nothing was served):\n  "
            + "\n  ".join(problems)
        )
    from ..serve.server import run

    if spec == bundled_example() and app_spec is None:
        print("[durable] no app given and none in this folder: serving the bundled example")

    raise typer.Exit(run(services, host, port, http1))
