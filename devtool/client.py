"""How `durable` commands reach the data: a runtime's admin API, or the store file.

:func:`connect` finds a runtime (``--url``; in a project folder, the one holding its
store, named by the store's holder file; else the default URL) and talks to its admin
API over HTTP, saying on stderr which runtime answered. With no
runtime up, read commands open the store read-only and are served by the same admin
API code in this process (:func:`durable.devtool.admin.routes.offline_app`), so both paths
give the same answers. DuckDB lets one process hold a file: a store held by a runtime
is never opened here; its API is used instead.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any

from .errors import DevtoolError, StoreLockedError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Client",
    "CliError",
    "connect",
    "connect_cluster",
    "answer",
    "answered",
    "DEFAULT_URL",
    "DEFAULT_STORE",
]

DEFAULT_URL = "http://127.0.0.1:9070"
#: where a Restate cluster's ingress is, when its ``GET /version`` names one this
#: machine cannot reach
RESTATE_INGRESS_ENV = "DURABLE_RESTATE_INGRESS"
DEFAULT_STORE = os.path.join(".durable", "durable.duckdb")
_HEALTH_TIMEOUT = 2.0


class CliError(DevtoolError):
    """A command failed; the message says what happened and what to do."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def answer(r: httpx.Response) -> tuple[Any, str | None]:
    """An admin API answer: its JSON body (None when it is not JSON) and, for a 4xx or
    5xx, the message to show (the API's own, else the status and the start of the text).
    Shared by the CLI and the TUI."""
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code >= 400:
        message = body.get("message") if isinstance(body, dict) else None
        return body, message or f"HTTP {r.status_code}: {r.text[:200]}"
    return body, None


def _health(url: str) -> dict | None:
    import httpx  # lazily: `durable dev` does not need it

    try:
        r = httpx.get(url.rstrip("/") + "/health", timeout=_HEALTH_TIMEOUT)
        body = r.json()
    except (httpx.HTTPError, ValueError):
        return None
    return body if r.status_code == 200 and body.get("status") in ("ok", "degraded") else None


def _holder(store: str) -> dict:
    """The holder file of a store: the PID and admin URL of the runtime holding it."""
    try:
        with open(os.path.abspath(store) + ".holder.json") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _holder_url(store: str) -> str | None:
    url = _holder(store).get("admin_url")
    return url if isinstance(url, str) else None


def _serves(health: dict, path: str, holder: dict) -> bool:
    """Does the runtime whose /health this is hold the store at ``path``?"""
    theirs = health.get("store")
    if isinstance(theirs, str) and os.path.isabs(theirs):
        return os.path.realpath(theirs) == os.path.realpath(path)
    return holder.get("pid") is not None and holder.get("pid") == health.get("pid")


def answered(url: str, health: dict) -> str:
    """Which runtime answered, said on stderr before a command's output."""
    parts = [f"store {health['store']}" if health.get("store") else None]
    parts.append(f"PID {health['pid']}" if health.get("pid") else None)
    extra = ", ".join(p for p in parts if p)
    return f"runtime at {url}" + (f" ({extra})" if extra else "")


class Client:
    """GET and POST on the admin API, over HTTP or in-process over a read-only store."""

    def __init__(
        self,
        url: str,
        health: dict | None = None,
        store: Any = None,
        note: str | None = None,
        cluster: Any = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.health = health or {}
        self.note = note  # said once on stderr (e.g. "reading the store read-only")
        self._store = store
        self._runner: asyncio.Runner | None = None
        self._async: httpx.AsyncClient | None = None
        self._http: httpx.Client | None = None
        import httpx

        self._app: Any = None
        if store is not None or cluster is not None:
            if cluster is not None:
                self._app = cluster  # a cluster_app (see connect_cluster)
            else:
                from .admin import offline_app

                self._app = offline_app(store)
            self._runner = asyncio.Runner()
            transport = httpx.ASGITransport(app=self._app)
            self._async = httpx.AsyncClient(transport=transport, base_url="http://store")
        else:
            self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(60.0, connect=5.0))

    @property
    def ingress_url(self) -> str | None:
        return self.health.get("ingress_url")

    @property
    def cluster(self) -> str | None:
        """The Restate admin URL this client reads, or None (a durable runtime or store)."""
        return self.health.get("cluster")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            if self._async is not None:
                assert self._runner is not None
                return self._runner.run(self._async.request(method, path, **kwargs))
            assert self._http is not None
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise CliError(f"the runtime at {self.url} did not answer in time") from None
        except httpx.HTTPError as e:
            raise CliError(f"cannot reach the runtime at {self.url}: {e}") from None

    def _json(self, r: httpx.Response) -> Any:
        body, error = answer(r)
        if error is not None:
            raise CliError(error, r.status_code)
        return body

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != []}
        return self._json(self.request("GET", path, params=clean))

    def post(self, path: str, body: Any = None, content: bytes | None = None) -> Any:
        if content is not None:
            return self._json(self.request("POST", path, content=content))
        return self._json(self.request("POST", path, json=body if body is not None else {}))

    def download(self, path: str) -> bytes:
        r = self.request("GET", path)
        if r.status_code >= 400:
            self._json(r)
        return r.content

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._async is not None and self._runner is not None:
            self._runner.run(self._async.aclose())
            restate = getattr(getattr(self._app, "state", None), "restate", None)
            if restate is not None:
                self._runner.run(restate.close())
            self._runner.close()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(url: str | None, store: str | None, need_runtime: bool, what: str) -> Client:
    """A client of the runtime; or, for reads with none up, of the store file read-only.

    ``url``/``store`` are the options as given (None: not given); ``what`` names the
    command for messages. ``--url`` names the one runtime to use. Otherwise, in a project
    folder (one with a store, or with ``--store``), only the runtime holding that store
    will do: a runtime on the default URL that serves another project's store is not
    used silently. Elsewhere, the runtime on the default URL.
    """
    if url is not None:
        health = _health(url)
        if health is not None:
            return Client(url, health, note=answered(url, health))
        raise CliError(
            f"no runtime answers at {url}: `durable {what}` needs a running runtime. "
            "Start one with `durable dev`, or point to it with --url."
        )
    path = os.path.abspath(store or DEFAULT_STORE)
    holder = _holder(path)
    in_project = store is not None or os.path.exists(path) or bool(holder)
    if not in_project:
        health = _health(DEFAULT_URL)
        if health is not None:
            return Client(DEFAULT_URL, health, note=answered(DEFAULT_URL, health))
        if need_runtime:
            raise CliError(
                f"no runtime answers at {DEFAULT_URL}: `durable {what}` needs a running "
                "runtime. Start one with `durable dev`, or point to it with --url."
            )
        raise CliError(
            f"no runtime answers at {DEFAULT_URL}, and there is no store at {path}: start "
            "a runtime with `durable dev`, or give --url or --store."
        )
    other = None  # a runtime that answers but serves another store
    for u in dict.fromkeys(x for x in (_holder_url(path), DEFAULT_URL) if x):
        health = _health(u)
        if health is None:
            continue
        if _serves(health, path, holder):
            return Client(u, health, note=answered(u, health))
        other = other or (u, health.get("store") or "another store")
    elsewhere = (
        f"; the runtime at {other[0]} serves another store ({other[1]}): give --url "
        f"{other[0]} to use it"
        if other
        else ""
    )
    if need_runtime:
        raise CliError(
            f"no runtime runs for the store {path}: `durable {what}` needs one. Start it "
            f"with `durable dev` in this folder{elsewhere}."
        )
    if not os.path.exists(path):
        raise CliError(
            f"there is no store at {path}, and no runtime runs for it: start a runtime "
            f"with `durable dev`, or give --url or --store{elsewhere}."
        )
    from .store import Store

    try:
        opened = Store.open(path, read_only=True)
    except StoreLockedError as e:
        raise CliError(
            f"no runtime answers for the store {path}, and {e} (its admin API did not "
            "answer either)"
        ) from None
    except Exception as e:  # a file that is not a DuckDB store
        raise CliError(f"cannot open the store {path} read-only: {e}") from None
    return Client(
        "store:" + path,
        {"status": "offline", "store": path},
        store=opened,
        note=f"no runtime runs for the store {path}: reading the store read-only{elsewhere}",
    )


def cluster_note(admin_url: str, health: dict) -> str:
    """Which cluster answered, said on stderr before a command's output."""
    version = health.get("restate_version")
    return f"Restate cluster at {admin_url}" + (f" (Restate {version})" if version else "")


def connect_cluster(admin_url: str, what: str, ingress: str | None = None) -> Client:
    """A client of durable's admin API over the Restate cluster at ``admin_url`` (its
    admin API, :9070), served in this process; a CliError when no Restate answers."""
    from .cluster.app import cluster_app

    if not admin_url.startswith(("http://", "https://")):
        raise CliError(
            f"--restate takes the URL of Restate's admin API, e.g. http://127.0.0.1:9070 "
            f"(got {admin_url!r})"
        )
    ingress = ingress or os.environ.get(RESTATE_INGRESS_ENV) or None
    client = Client(admin_url, cluster=cluster_app(admin_url, ingress))
    try:
        r = client.request("GET", "/health")
        body, error = answer(r)
    except CliError as e:
        client.close()
        raise CliError(f"`durable {what}`: {e.message}") from None
    if error is not None or not isinstance(body, dict) or body.get("status") != "ok":
        client.close()
        raise CliError(error or f"no Restate admin API answers at {admin_url}")
    client.health = body
    client.note = cluster_note(admin_url, body)
    return client
