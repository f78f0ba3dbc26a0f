"""`durable dev` start-up: plain arguments parsed without typer, commands registered
lazily, and the first worker started before the runtime imports and opens its store."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
import typer
from durable.devtool import cli, workers
from durable.devtool.engine import Engine
from durable.devtool.store import Store

APP = """
from durable import Service, Context

svc = Service("Early")

@svc.handler()
async def hi(ctx: Context) -> str:
    return "hi"
"""


def _typer_params(argv: list[str]) -> dict:
    cmd = typer.main.get_command(cli.app)
    ctx = cmd.make_context("durable", ["dev", *argv])
    sub = cmd.get_command(ctx, "dev")
    return sub.make_context("dev", list(argv), parent=ctx).params


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["app.py"],
        ["--no-inline", "--no-verbose", "pkg.mod:attr"],
        [
            *("app.py", "--port", "81", "--admin-port=82", "--store", ":memory:", "--inline"),
            *("--no-reload", "--host", "0.0.0.0", "--suspend-after", "0.5", "--max-body", "12"),
            *("--verbose", "--hang-deadline", "3", "--tui"),
        ],
    ],
)
def test_plain_dev_arguments_parse_as_typer_parses_them(argv):
    assert cli._plain_dev_args(argv) == _typer_params(argv)


@pytest.mark.parametrize(
    "argv", [["--help"], ["--port", "abc"], ["--bogus"], ["a", "b"], ["--por", "1"]]
)
def test_help_and_errors_are_left_to_typer(argv):
    assert cli._plain_dev_args(argv) is None


def test_dev_path_imports_neither_the_commands_nor_pydantic():
    code = (
        "import sys\n"
        "from durable.devtool import cli\n"
        "assert cli._plain_dev_args(['app.py', '--port', '1']) is not None\n"
        "heavy = [m for m in ('pydantic', 'textual', 'httpx', 'durable.devtool.commands') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""
    assert "invocations" in {c.name for c in typer.main.get_command(cli.app).commands.values()}


async def test_the_first_worker_is_the_prespawned_one(tmp_path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    workers.prespawn_worker(str(app), 0.5)
    assert workers._early is not None
    early_pid = workers._early[2].pid
    store = await asyncio.to_thread(Store.open, ":memory:")
    engine = Engine(store)
    pw = workers.ProcessWorkers(engine, str(app), 0.5)
    try:
        await engine.start()
        assert await pw.start()
        assert pw.current is not None and pw.current.proc.pid == early_pid
        assert "Early" in engine.services
        assert workers._early is None
    finally:
        await pw.stop()
        await engine.stop()
        await asyncio.to_thread(store.close)


def test_an_unclaimed_prespawned_worker_is_killed_at_exit(tmp_path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    workers.prespawn_worker(str(app), 1.0)
    assert workers._early is not None
    proc = workers._early[2]
    assert workers._take_early(str(app), 2.0) is None  # other settings: not this one
    workers._drop_early()
    assert proc.poll() is not None
    assert workers._early is None
