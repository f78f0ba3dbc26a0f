"""Shared fixtures: a real `durable dev` runtime process on free ports, a temp store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevServer:
    """A `durable dev` subprocess: start, stop, kill -9, restart on the same store."""

    def __init__(
        self,
        app: str | Path,
        store: str | Path,
        cwd: Path,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.app = str(app)
        self.store = str(store)
        self.cwd = cwd
        self.extra = extra or []
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.admin_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = cwd / f"durable-dev-{self.port}.log"
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout: float = 30.0) -> DevServer:
        self._log = open(self.log_path, "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "durable.devtool.cli",
                "dev",
                self.app,
                "--port",
                str(self.port),
                "--admin-port",
                str(self.admin_port),
                "--store",
                self.store,
                *self.extra,
            ],
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"durable dev exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/restate/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"durable dev did not become ready:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def kill(self) -> None:
        """kill -9 the runtime and its worker (the whole process group)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log:
            self._log.close()
            self._log = None

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)


@pytest.fixture
def write_app(tmp_path: Path):
    """Write an app module from source text into the test's folder; returns its path."""

    def write(source: str, name: str = "app.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator:
    """A factory of started DevServers; every one is stopped after the test."""
    servers: list[DevServer] = []

    def start(
        app: str | Path,
        extra: list[str] | None = None,
        store: str | Path | None = None,
        env: dict[str, str] | None = None,
    ) -> DevServer:
        s = DevServer(app, store or tmp_path / "store" / "durable.duckdb", tmp_path, extra, env)
        servers.append(s)
        return s.start()

    yield start
    for s in servers:
        s.stop()
