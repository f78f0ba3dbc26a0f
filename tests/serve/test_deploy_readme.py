"""README's two commands that serve the bundled example on Restate are the ones that
work: taken from the README, run against a real restate-server 1.7 (its ports put in
place of the README's), then Restate's ingress answers a call."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.restate_server import AppProcess, RestateServer, clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    section = README.read_text().split("## Serve it on a Restate cluster", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's Restate section has no ```sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_gives_two_commands_serve_then_deploy() -> None:
    serve, deploy = readme_commands()  # exactly two
    assert serve.startswith("durable serve ") and deploy.startswith("durable deploy ")
    assert "docs/deploy.md" in README.read_text()


def test_the_readme_commands_serve_and_register_the_bundled_example(tmp_path: Path) -> None:
    server = RestateServer(tmp_path / "restate")
    server.base.mkdir()
    port = free_port()

    def argv(line: str) -> list[str]:
        line = line.replace(":9080", f":{port}").replace("9080", str(port))
        line = line.replace("http://127.0.0.1:9070", server.admin_url)
        words = shlex.split(line)
        assert words[0] == "durable"
        return [sys.executable, "-m", "durable.devtool.cli", *words[1:]]

    serve_line, deploy_line = readme_commands()
    work = tmp_path / "empty"  # no app.py here: durable serve serves the bundled example
    work.mkdir()
    serve = AppProcess(argv(serve_line), work, env=clean_env(), name="durable-serve")
    serve.port = port
    try:
        server.start()
        serve.start()
        r = subprocess.run(
            argv(deploy_line), cwd=work, env=clean_env(), capture_output=True, text=True,
            timeout=90,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"registered http://127.0.0.1:{port} ")
        assert "OrderWorkflow" in r.stdout and "Greeter" in r.stdout
        answer = httpx.post(f"{server.ingress_url}/Greeter/greet", json="Ann", timeout=30)
        assert (answer.status_code, answer.json()) == (200, "Hello Ann!")
    finally:
        serve.stop()
        server.stop()
