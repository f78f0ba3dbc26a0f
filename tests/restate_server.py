"""A real Restate 1.7 for the tests: the server, deployments registered with it, its SQL.

- :func:`restate_server_binary`: npm's ``@restatedev/restate-server`` (pinned), which
  .ci/run installs under ~/.cache/durable; installed here with npm when missing, so
  README's test command works on a fresh machine.
- :class:`RestateServer`: one server on free loopback ports in a temp base dir: start,
  stop, kill -9, restart on the same data; :meth:`RestateServer.register` a deployment
  (``POST /deployments``), :meth:`RestateServer.query` its SQL introspection
  (``POST /query``), :meth:`RestateServer.act` an admin action.
- :class:`AppProcess`: a deployment's process (hypercorn, ``durable serve``...) on a free
  port, waited for on ``/health``, stoppable and killable.

Test modules take a module-scoped server with :func:`restate_fixture` or build their own.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

RESTATE_VERSION = "1.7.12"
RESTATE_DIR = Path(
    os.environ.get("DURABLE_RESTATE_DIR")
    or Path.home() / ".cache" / "durable" / f"restate-server-{RESTATE_VERSION}"
)
INSTALL_HINT = (
    f"install it with: npm install --prefix {RESTATE_DIR} --no-audit --no-fund "
    f"@restatedev/restate-server@{RESTATE_VERSION}   (.ci/run does this; or point "
    "RESTATE_SERVER_BIN at a restate-server 1.7 binary)"
)


def restate_server_binary() -> Path:
    """The restate-server binary: $RESTATE_SERVER_BIN, else the one npm installed."""
    if os.environ.get("RESTATE_SERVER_BIN"):
        given = Path(os.environ["RESTATE_SERVER_BIN"])
        if not given.is_file():
            pytest.fail(f"RESTATE_SERVER_BIN={given} is not a file: {INSTALL_HINT}", False)
        return given
    pattern = str(RESTATE_DIR / "node_modules/@restatedev/restate-server-*/bin/restate-server")
    found = sorted(glob.glob(pattern))
    if not found and shutil.which("npm"):
        cmd = ["npm", "install", "--prefix", str(RESTATE_DIR), "--no-audit", "--no-fund"]
        cmd.append(f"@restatedev/restate-server@{RESTATE_VERSION}")
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        except (subprocess.SubprocessError, OSError) as e:
            pytest.fail(f"installing restate-server failed ({e}): {INSTALL_HINT}", False)
        found = sorted(glob.glob(pattern))
    if not found:
        pytest.fail(f"no restate-server binary under {RESTATE_DIR}: {INSTALL_HINT}", False)
    return Path(found[0])


def wait_for(url: str, proc: subprocess.Popen, log: Path, what: str, timeout: float = 60) -> None:
    """Until ``url`` answers 200; fails with the log's tail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer {url} in {timeout} s:\n{log.read_text()[-4000:]}")


def stop_group(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Signal the process group of ``proc`` and wait for it (SIGKILL after 15 s)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without RESTATE_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_")}
    env.update(extra)
    return env


class RestateServer:
    """One restate-server on free loopback ports, its data under ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.ingress_port, self.admin_port, self.node_port = free_port(), free_port(), free_port()
        self.log_path = base / "restate-server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout: float = 60) -> RestateServer:
        binary = restate_server_binary()
        config = self.base / "config.toml"
        config.write_text(
            f"""
disable-telemetry = true
default-num-partitions = 2
bind-address = "127.0.0.1:{self.node_port}"
advertised-address = "http://127.0.0.1:{self.node_port}/"
rocksdb-total-memory-size = "256 MiB"
[admin]
bind-address = "127.0.0.1:{self.admin_port}"
[admin.query-engine]
memory-size = "64 MiB"
[ingress]
bind-address = "127.0.0.1:{self.ingress_port}"
"""
        )
        with open(self.log_path, "a") as out:
            # Its outbound call at start (a version check) fails offline, harmlessly:
            # readiness is the admin and ingress health endpoints, nothing else.
            self.proc = subprocess.Popen(
                [str(binary), "--config-file", str(config), "--base-dir", str(self.base / "data"),
                 "--no-logo", "--listen-mode", "tcp", "--log-disable-ansi-codes", "true"],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.base, env=clean_env(),
                start_new_session=True,
            )  # fmt: skip
        wait_for(f"{self.admin_url}/health", self.proc, self.log_path, "restate-server", timeout)
        wait_for(
            f"{self.ingress_url}/restate/health",
            self.proc,
            self.log_path,
            "restate-server",
            timeout,
        )
        return self

    def stop(self) -> None:
        stop_group(self.proc)

    def kill(self) -> None:
        stop_group(self.proc, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def register(self, uri: str, *, force: bool = True, http11: bool = False) -> dict[str, Any]:
        """Register the deployment at ``uri`` (``POST /deployments``); its answer."""
        body: dict[str, Any] = {"uri": uri, "force": force}
        if http11:
            body["use_http_11"] = True
        r = httpx.post(f"{self.admin_url}/deployments", json=body, timeout=30)
        assert r.status_code in (200, 201), f"registering {uri} failed: {r.status_code} {r.text}"
        return r.json()

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of one SQL introspection query (``POST /query``)."""
        r = httpx.post(
            f"{self.admin_url}/query",
            json={"query": sql},
            headers={"accept": "application/json"},
            timeout=30,
        )
        assert r.status_code == 200, f"query failed: {r.status_code} {r.text}"
        return r.json()["rows"]

    def act(self, action: str, inv_id: str) -> httpx.Response:
        """``PATCH /invocations/{id}/{action}`` (cancel, kill, purge, pause, resume...)."""
        return httpx.patch(f"{self.admin_url}/invocations/{inv_id}/{action}", timeout=10)

    def wait_status(self, inv_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        """Until ``sys_invocation`` shows ``inv_id`` with ``status``; its row."""
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = self.query(f"SELECT * FROM sys_invocation WHERE id = '{inv_id}'")
            if rows and rows[0].get("status") == status:
                return rows[0]
            time.sleep(0.1)
        raise AssertionError(f"{inv_id} is not {status} after {timeout} s: {rows}")


class AppProcess:
    """A deployment's process on a free port: ``command`` gets ``{port}`` filled in."""

    def __init__(
        self,
        command: Sequence[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        health: str = "/health",
        name: str = "app",
    ) -> None:
        self.port = free_port()
        self.command = [c.replace("{port}", str(self.port)) for c in command]
        self.cwd = cwd
        self.env = env if env is not None else clean_env()
        self.health = health
        self.log_path = cwd / f"{name}-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.name = name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> AppProcess:
        with open(self.log_path, "a") as out:
            self.proc = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd,
                env=self.env, start_new_session=True,
            )  # fmt: skip
        wait_for(self.url + self.health, self.proc, self.log_path, self.name, timeout)
        return self

    def stop(self) -> None:
        stop_group(self.proc)

    def kill(self) -> None:
        stop_group(self.proc, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def hypercorn_app(app_dir: Path, module: str = "app:app") -> AppProcess:
    """``module`` under hypercorn (HTTP/2) with the real restate-sdk, never durable's
    ``restate`` alias (an empty PYTHONPATH)."""
    import sys

    return AppProcess(
        [sys.executable, "-m", "hypercorn", module, "--bind", "127.0.0.1:{port}"],
        app_dir,
        env=clean_env(PYTHONPATH=""),
        name="hypercorn",
    )


def restate_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestateServer]:
    """Body of a module-scoped fixture: a started server, stopped at the end."""
    server = RestateServer(tmp_path_factory.mktemp("restate"))
    try:
        yield server.start()
    finally:
        server.stop()
