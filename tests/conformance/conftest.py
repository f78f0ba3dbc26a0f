"""The two systems the conformance scenarios run against, one of each for the module:

- ``restate``: a real ``restate-server`` 1.7 (npm's ``@restatedev/restate-server``, which
  .ci/run installs under ~/.cache/durable) on free loopback ports in a temp base dir,
  serving ``app.py`` with the real restate-sdk under hypercorn (HTTP/2), registered over
  its admin API (``POST /deployments``);
- ``durable``: ``durable dev app.py`` (the app's ``import restate`` served by durable).

The Restate side imports the real ``restate`` module in its own process: nothing here
imports durable's alias.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conformance.harness import Side
from tests.conftest import DevServer, free_port

HERE = Path(__file__).parent
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
    if not found and shutil.which("npm"):  # README's test command works on a fresh machine
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


def _wait(url: str, proc: subprocess.Popen, log: Path, what: str, timeout: float = 60) -> None:
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


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a copy of the scenarios' app (so no watcher sees the repo)."""
    d = tmp_path_factory.mktemp("conformance-app")
    shutil.copy(HERE / "app.py", d / "app.py")
    return d


@pytest.fixture(scope="module")
def restate_side(tmp_path_factory: pytest.TempPathFactory, app_dir: Path) -> Iterator[Side]:
    binary = restate_server_binary()
    base = tmp_path_factory.mktemp("restate")
    ingress, admin, node, app_port = free_port(), free_port(), free_port(), free_port()
    config = base / "config.toml"
    config.write_text(
        f"""
disable-telemetry = true
default-num-partitions = 2
bind-address = "127.0.0.1:{node}"
advertised-address = "http://127.0.0.1:{node}/"
rocksdb-total-memory-size = "256 MiB"
[admin]
bind-address = "127.0.0.1:{admin}"
[admin.query-engine]
memory-size = "64 MiB"
[ingress]
bind-address = "127.0.0.1:{ingress}"
"""
    )
    server_log, app_log = base / "restate-server.log", base / "app.log"
    server = app = None
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_")}
    # the app's side: the real restate-sdk, never durable's modules
    app_env = {**env, "PYTHONPATH": ""}
    try:
        with open(server_log, "w") as out:
            # Its outbound call at start (a version check) fails offline, harmlessly:
            # readiness is the admin and ingress health endpoints, nothing else.
            server = subprocess.Popen(
                [str(binary), "--config-file", str(config), "--base-dir", str(base / "data"),
                 "--no-logo", "--listen-mode", "tcp", "--log-disable-ansi-codes", "true"],
                stdout=out, stderr=subprocess.STDOUT, cwd=base, env=env, start_new_session=True,
            )  # fmt: skip
        with open(app_log, "w") as out:
            app = subprocess.Popen(
                [sys.executable, "-m", "hypercorn", "app:app", "--bind", f"127.0.0.1:{app_port}"],
                stdout=out, stderr=subprocess.STDOUT, cwd=app_dir, env=app_env,
                start_new_session=True,
            )  # fmt: skip
        _wait(f"http://127.0.0.1:{admin}/health", server, server_log, "restate-server")
        _wait(f"http://127.0.0.1:{ingress}/restate/health", server, server_log, "restate-server")
        _wait(f"http://127.0.0.1:{app_port}/health", app, app_log, "the app under hypercorn")
        r = httpx.post(
            f"http://127.0.0.1:{admin}/deployments",
            json={"uri": f"http://127.0.0.1:{app_port}", "force": True},
            timeout=30,
        )
        assert r.status_code in (200, 201), f"registering the app failed: {r.text}"

        def act(action: str, inv_id: str) -> httpx.Response:
            # Restate answers a cancel 202 and a kill 200: both say "accepted" (202)
            r = httpx.patch(f"http://127.0.0.1:{admin}/invocations/{inv_id}/{action}", timeout=10)
            return httpx.Response(
                202 if r.status_code in (200, 202) else r.status_code, text=r.text
            )

        yield Side("restate", f"http://127.0.0.1:{ingress}", act)
    finally:
        _stop(app)
        _stop(server)


@pytest.fixture(scope="module")
def durable_side(tmp_path_factory: pytest.TempPathFactory, app_dir: Path) -> Iterator[Side]:
    work = tmp_path_factory.mktemp("durable")
    srv = DevServer(app_dir / "app.py", work / "store" / "durable.duckdb", work, ["--no-reload"])
    srv.start(timeout=60)
    try:

        def act(action: str, inv_id: str) -> httpx.Response:
            # durable's admin API is its own (POST /api/invocations/{id}/cancel, 200):
            # the scenario checks only that the action was accepted, as a 202.
            r = httpx.post(f"{srv.admin_url}/api/invocations/{inv_id}/{action}", timeout=10)
            return httpx.Response(202 if r.status_code == 200 else r.status_code, text=r.text)

        yield Side("durable", srv.url, act)
    finally:
        srv.stop()
