"""`durable dev --tui`: the runtime and the TUI in one process, in a real terminal (a pty)."""

from __future__ import annotations

import fcntl
import os
import pty
import socket
import struct
import subprocess
import sys
import termios
import threading
import time

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

APP = """
from durable import Service, Context

greeter = Service("Greeter")

@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    print(f"greeting {name}")  # the worker's output: to the TUI's log, not the screen
    return f"Hello {name}!"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Terminal:
    """A pseudo-terminal of 80x24; what the program writes is kept in ``output``."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output.extend(chunk)

    def start(self) -> None:
        os.close(self.slave)
        self._reader.start()

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        os.close(self.master)


def wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("mode", ["worker", "inline"])
def test_dev_tui_shows_the_tui_and_sends_console_lines_to_its_log(write_app, tmp_path, mode):
    app = write_app(APP)
    port, admin_port = free_port(), free_port()
    admin = f"http://127.0.0.1:{admin_port}"
    term = Terminal()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durable.devtool.cli",
            "dev",
            str(app),
            "--port",
            str(port),
            "--admin-port",
            str(admin_port),
            "--store",
            str(tmp_path / "store.duckdb"),
            "--no-reload",
            "--tui",
            *(["--inline"] if mode == "inline" else []),
        ],
        stdin=term.slave,
        stdout=term.slave,
        stderr=term.slave,
        cwd=tmp_path,
        env={**os.environ, "TERM": "xterm-256color"},
        start_new_session=True,
    )
    term.start()
    try:
        wait(lambda: httpx.get(admin + "/health").status_code == 200, 30, "the runtime")
        wait(lambda: b"Invocations" in term.output, 30, "the TUI on the screen")
        r = httpx.post(f"http://127.0.0.1:{port}/Greeter/greet", json="Ann", timeout=30)
        assert r.json() == "Hello Ann!"

        def log_events() -> list[str]:
            events = httpx.get(admin + "/api/events").json()["events"]
            return [e["message"] for e in events if e["level"] == "log"]

        # what the handler printed, tagged with its invocation (worker or inline alike)
        [line] = wait(log_events, 10, "the handler's print in the events")
        assert line.startswith("[Greeter/greet inv_") and line.endswith("] greeting Ann")
        wait(lambda: b"greeting Ann" in term.output, 10, "the line in the TUI's log panel")
        shown = bytes(term.output)
        assert b"\x1b[?1049h" in shown  # the TUI took the screen (alternate buffer)
        assert b"[durable] ready" not in shown  # console lines did not go to the screen
        assert b"Invocations" in shown and b"127.0.0.1:%d" % admin_port in shown

        term.type(b"q")
        assert proc.wait(timeout=30) == 0
        wait(lambda: b"[durable] stopping" in term.output, 5, "the last lines after the TUI")
        with pytest.raises(httpx.HTTPError):
            httpx.get(admin + "/health", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
        term.close()


def test_dev_tui_says_why_the_runtime_did_not_start(write_app, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "durable.devtool.cli", "dev", str(write_app(APP))]
            + ["--port", str(port), "--admin-port", str(free_port()), "--tui"]
            + ["--store", str(tmp_path / "store.duckdb")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 1
    assert f"error: cannot listen for the ingress on 127.0.0.1:{port}" in r.stderr
