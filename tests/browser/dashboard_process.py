"""A `durable dashboard` subprocess for the browser tests (``--url`` or ``--restate``)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["DashboardProcess", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DashboardProcess:
    """``durable dashboard ARGS --port P``, up once it answers any page."""

    def __init__(self, args: list[str], cwd: Path, timeout: float = 30) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"dashboard-{self.port}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "durable.devtool.cli", "dashboard", *args]
                + ["--port", str(self.port)],
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"durable dashboard exited:\n{self.log.read_text()}")
            try:
                httpx.get(self.url + "/invocations", timeout=5)  # any answer: it serves
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"durable dashboard did not answer:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
