"""The systems the conformance scenarios run against, one of each for the module:

- ``restate``: a real ``restate-server`` 1.7 (npm's ``@restatedev/restate-server``, which
  .ci/run installs under ~/.cache/durable) on free loopback ports in a temp base dir,
  serving ``app.py`` with the real restate-sdk under hypercorn (HTTP/2), registered over
  its admin API (``POST /deployments``);
- ``durable``: ``durable dev app.py`` (the app's ``import restate`` served by durable);
- ``twin``: ``durable dev app_durable.py``, the same app written with ``import durable``;
- ``serve``: ``durable serve app_durable.py`` (the real restate-sdk under hypercorn,
  HTTP/2) registered with a second real ``restate-server`` (one server cannot hold two
  deployments of the same services side by side): Restate's answers are expected.

The Restate side imports the real ``restate`` module in its own process: nothing here
imports durable's alias.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conformance.harness import Side
from tests.conftest import DevServer
from tests.restate_server import AppProcess, RestateServer, clean_env, hypercorn_app

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a copy of the scenarios' app (so no watcher sees the repo)."""
    d = tmp_path_factory.mktemp("conformance-app")
    shutil.copy(HERE / "app.py", d / "app.py")
    shutil.copy(HERE / "app_durable.py", d / "app_durable.py")
    return d


@pytest.fixture(scope="module")
def restate_side(tmp_path_factory: pytest.TempPathFactory, app_dir: Path) -> Iterator[Side]:
    server = RestateServer(tmp_path_factory.mktemp("restate"))
    app = hypercorn_app(app_dir)  # the real restate-sdk, never durable's modules
    try:
        server.start()
        app.start()
        server.register(app.url)
        yield Side("restate", server.ingress_url, _restate_admin(server))
    finally:
        app.stop()
        server.stop()


@pytest.fixture(scope="module")
def serve_side(tmp_path_factory: pytest.TempPathFactory, app_dir: Path) -> Iterator[Side]:
    server = RestateServer(tmp_path_factory.mktemp("restate-serve"))
    cmd = [sys.executable, "-m", "durable.devtool.cli", "serve", "app_durable.py"]
    app = AppProcess([*cmd, "--port", "{port}"], app_dir, env=clean_env(), name="serve")
    try:
        server.start()
        app.start()
        server.register(app.url)
        yield Side("serve", server.ingress_url, _restate_admin(server))
    finally:
        app.stop()
        server.stop()


def _restate_admin(server: RestateServer) -> Callable[[str, str], httpx.Response]:
    def act(action: str, inv_id: str) -> httpx.Response:
        # Restate answers a cancel 202 and a kill 200: both say "accepted" (202)
        r = server.act(action, inv_id)
        return httpx.Response(202 if r.status_code in (200, 202) else r.status_code, text=r.text)

    return act


def _durable_dev(tmp_path_factory: pytest.TempPathFactory, app: Path) -> Iterator[Side]:
    work = tmp_path_factory.mktemp("durable")
    srv = DevServer(app, work / "store" / "durable.duckdb", work, ["--no-reload"])
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


@pytest.fixture(scope="module")
def durable_side(tmp_path_factory: pytest.TempPathFactory, app_dir: Path) -> Iterator[Side]:
    yield from _durable_dev(tmp_path_factory, app_dir / "app.py")


@pytest.fixture(scope="module")
def twin_side(tmp_path_factory: pytest.TempPathFactory, app_dir: Path) -> Iterator[Side]:
    """The ``import durable`` twin under durable dev: durable's answers, as for app.py."""
    yield from _durable_dev(tmp_path_factory, app_dir / "app_durable.py")
