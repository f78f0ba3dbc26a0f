"""The commands a person copies work: README's two commands that serve the bundled
example on Restate, and the `durable deploy` line `durable serve --http1` prints. Each is
taken from where a person reads it and run against a real restate-server 1.7 (its ports
put in place of the defaults); then Restate's ingress answers a call."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.restate_server import AppProcess, RestateServer, clean_env, restate_fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def restate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestateServer]:
    yield from restate_fixture(tmp_path_factory)


def readme_commands() -> list[str]:
    section = README.read_text().split("## Serve it on a Restate cluster", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's Restate section has no ```sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def argv(line: str, port: int, admin_url: str) -> list[str]:
    """A `durable ...` line as this test runs it: on ``port``, with ``admin_url``."""
    line = re.sub(r"\b9080\b", str(port), line).replace("http://127.0.0.1:9070", admin_url)
    words = shlex.split(line)
    assert words[0] == "durable", line
    return [sys.executable, "-m", "durable.devtool.cli", *words[1:]]


def deploy(command: list[str], cwd: Path) -> str:
    r = subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=90
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_readme_gives_two_commands_serve_then_deploy() -> None:
    serve, deploy = readme_commands()  # exactly two
    assert serve.startswith("durable serve ") and deploy.startswith("durable deploy ")
    assert "docs/deploy.md" in README.read_text()


def test_the_readme_commands_serve_and_register_the_bundled_example(
    restate: RestateServer, tmp_path: Path
) -> None:
    port = free_port()
    serve_line, deploy_line = readme_commands()
    # In a folder with no app.py, durable serve serves the bundled example.
    serve = AppProcess(argv(serve_line, port, restate.admin_url), tmp_path, name="serve")
    serve.port = port
    try:
        serve.start()
        said = deploy(argv(deploy_line, port, restate.admin_url), tmp_path)
        assert said.startswith(f"registered http://127.0.0.1:{port} ")
        assert "OrderWorkflow" in said and "Greeter" in said
        answer = httpx.post(f"{restate.ingress_url}/Greeter/greet", json="Ann", timeout=30)
        assert (answer.status_code, answer.json()) == (200, "Hello Ann!")
        # README's curl -d sends a form content type: Restate takes it, as durable dev does
        form = {"content-type": "application/x-www-form-urlencoded"}
        answer = httpx.post(
            f"{restate.ingress_url}/Greeter/greet", content=b'"Bo"', headers=form, timeout=30
        )
        assert (answer.status_code, answer.json()) == (200, "Hello Bo!")
    finally:
        serve.stop()


def test_the_deploy_line_durable_serve_http1_prints_registers_it(
    restate: RestateServer, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(
        "from durable import Context, Service\n\n"
        'echo = Service("PrintedEcho")\n\n\n'
        "@echo.handler()\n"
        "async def same(ctx: Context, value: int) -> int:\n"
        "    return value\n"
    )
    cmd = [sys.executable, "-m", "durable.devtool.cli", "serve", "app.py", "--http1"]
    serve = AppProcess([*cmd, "--port", "{port}"], tmp_path, name="serve-http1")
    try:
        serve.start()
        deadline = time.monotonic() + 30
        while "durable deploy " not in serve.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        printed = next(
            line.strip() for line in serve.log().splitlines() if "durable deploy " in line
        )
        assert printed.endswith(" --http1"), printed
        said = deploy(argv(printed, serve.port, restate.admin_url), tmp_path)
        assert said.startswith(f"registered {serve.url} ") and "PrintedEcho" in said
        answer = httpx.post(f"{restate.ingress_url}/PrintedEcho/same", json=7, timeout=30)
        assert (answer.status_code, answer.json()) == (200, 7)
    finally:
        serve.stop()
