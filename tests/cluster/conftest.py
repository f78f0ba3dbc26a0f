"""A real restate-server with ``app.py`` (the real restate-sdk under hypercorn)
registered, one per test module, and helpers to call its ingress and read its SQL."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.restate_server import AppProcess, RestateServer, hypercorn_app

HERE = Path(__file__).parent


class Cluster:
    """The server, its app, and what the tests do with them."""

    def __init__(self, server: RestateServer, app: AppProcess) -> None:
        self.server = server
        self.app = app

    @property
    def admin_url(self) -> str:
        return self.server.admin_url

    def call(self, path: str, body: Any = None, timeout: float = 30) -> httpx.Response:
        """``POST {ingress}/{path}`` with ``body`` as JSON (none when ``None``)."""
        url = f"{self.server.ingress_url}/{path}"
        if body is None:
            return httpx.post(url, timeout=timeout)
        return httpx.post(url, json=body, timeout=timeout)

    def send(self, path: str, body: Any = None) -> str:
        """A one-way call (``/send``); the new invocation's id."""
        r = self.call(f"{path}/send", body)
        assert r.status_code in (200, 202), r.text
        return r.json()["invocationId"]

    def query(self, sql: str) -> list[dict[str, Any]]:
        return self.server.query(sql)

    def row(self, inv_id: str) -> dict[str, Any]:
        rows = self.query(f"SELECT * FROM sys_invocation WHERE id = '{inv_id}'")
        assert rows, f"no invocation {inv_id}"
        return rows[0]

    def journal(self, inv_id: str) -> list[dict[str, Any]]:
        return self.query(f"SELECT * FROM sys_journal WHERE id = '{inv_id}' ORDER BY index")

    def wait_for(self, inv_id: str, test: Any, timeout: float = 30) -> dict[str, Any]:
        """Until ``test(row)`` holds for the invocation's ``sys_invocation`` row."""
        deadline = time.monotonic() + timeout
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            rows = self.query(f"SELECT * FROM sys_invocation WHERE id = '{inv_id}'")
            row = rows[0] if rows else {}
            if test(row):
                return row
            time.sleep(0.1)
        raise AssertionError(f"{inv_id} never got there in {timeout} s: {row}")

    def id_of(self, target: str) -> str:
        """The newest invocation of ``target`` (``Service/handler``, any key)."""
        service, handler = target.split("/")
        rows = self.query(
            f"SELECT id FROM sys_invocation WHERE target_service_name = '{service}' "
            f"AND target_handler_name = '{handler}' ORDER BY created_at DESC"
        )
        assert rows, f"no invocation of {target}"
        return rows[0]["id"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    app_dir = tmp_path_factory.mktemp("cluster-app")
    shutil.copy(HERE / "app.py", app_dir / "app.py")
    server = RestateServer(tmp_path_factory.mktemp("restate"))
    app = hypercorn_app(app_dir)
    try:
        server.start()
        app.start()
        server.register(app.url)
        yield Cluster(server, app)
    finally:
        app.stop()
        server.stop()
