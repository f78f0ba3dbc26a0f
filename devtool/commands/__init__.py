"""The `durable` commands that inspect and act on a runtime, one typer sub-app per group.

``register(app)`` joins them to the top-level app of :mod:`durable.devtool.cli`.
"""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    from . import (
        awakeables,
        dashboard,
        data,
        deploy,
        init,
        invocations,
        invoke,
        pull,
        serve,
        state,
        store,
        tui,
    )

    app.command("invoke")(invoke.invoke)
    app.command("services")(invoke.services)
    app.add_typer(invocations.app, name="invocations")
    app.add_typer(state.app, name="state")
    app.add_typer(awakeables.app, name="awakeables")
    app.add_typer(store.app, name="store")
    app.command("sql")(data.sql)
    app.command("export")(data.export)
    app.command("init")(init.init)
    app.command("tui")(tui.tui)
    app.command("dashboard")(dashboard.dashboard)
    app.command("serve")(serve.serve)
    app.command("deploy")(deploy.deploy)
    app.command("pull")(pull.pull)
