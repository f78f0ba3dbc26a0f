"""Shared pieces of the benchmarks: runtime processes, the HTTP client, statistics, RSS.

Nothing here knows a workload. A workload starts a :class:`Runtime` on a fresh store,
drives it with one :func:`make_client` client, measures with :class:`Meter` and
:class:`RssSampler`, and returns an :class:`Outcome`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .httpclient import LightClient
from .httpclient import Timeout as LightTimeout
from .httpclient import TransportError as LightTransportError
from .procs import (  # noqa: F401 (re-exported: the workloads import them from here)
    bytecode_env,
    cpu_of,
    free_port,
    process_tree,
    rss_of,
    self_cpu,
)

BENCH_DIR = Path(__file__).resolve().parent
APP_FILE = BENCH_DIR / "app.py"
MIB = 1024 * 1024
TRANSPORT_ERRORS = (httpx.TransportError, LightTransportError)
TIMEOUTS = (httpx.TimeoutException, LightTimeout)


class BenchError(Exception):
    """A workload could not produce its figures (runtime down, bad answer, timeout)."""


# --------------------------------------------------------------------------------------
# settings


@dataclass
class Settings:
    quick: bool = False
    tmp_root: str | None = None  # where temp folders go (the disk measured)
    keep: bool = False  # keep temp folders (stores, logs) after the run
    client: str = "light"  # the load generator's HTTP client: "light" or "httpx"
    verbose: bool = False

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full


# --------------------------------------------------------------------------------------
# results


@dataclass
class Outcome:
    """What one run of one workload produced."""

    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class ErrorLog:
    """Counts errors by message so a flood of one failure stays one line."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, msg: str) -> None:
        self.counts[msg[:300]] += 1

    def __len__(self) -> int:
        return sum(self.counts.values())

    def lines(self, prefix: str = "") -> list[str]:
        return [f"{prefix}{n}x {msg}" for msg, n in self.counts.most_common(5)]


def describe(exc: BaseException) -> str:
    text = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, BenchError) else text


# --------------------------------------------------------------------------------------
# statistics


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: Iterable[float]) -> float:
    return percentile(values, 50)


# --------------------------------------------------------------------------------------
# the runtime under test


class Runtime:
    """One ``durable dev`` process (plus its worker child) on a store in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        *,
        store: Path | None = None,
        env: dict[str, str] | None = None,
        name: str = "runtime",
        app: Path = APP_FILE,
        ports: tuple[int, int] | None = None,
    ) -> None:
        self.workdir = workdir
        self.store = store or workdir / "store.duckdb"
        self.extra_env = env or {}
        self.name = name
        self.app = app
        self.proc: subprocess.Popen[bytes] | None = None
        # fixed ports (a restart on the same ports keeps the clients' URLs); else free ones
        self.fixed_ports = ports
        self.port = 0
        self.admin_port = 0
        self.log_path = workdir / f"{name}.log"
        self.ready_s = float("nan")
        self.spawned_at = float("nan")  # time.perf_counter() of the last spawn
        self._log_file: Any = None
        self._known: set[int] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        # BENCH_RUNTIME_CMD replaces "python -m durable.devtool.cli" (e.g. "durable")
        prefix = shlex.split(os.environ.get("BENCH_RUNTIME_CMD", "")) or [
            sys.executable,
            "-m",
            "durable.devtool.cli",
        ]
        return [
            *prefix,
            "dev",
            str(self.app),
            "--port",
            str(self.port),
            "--admin-port",
            str(self.admin_port),
            "--store",
            str(self.store),
            "--no-reload",
        ]

    def spawn(self) -> float:
        """Start the process (not waiting for it); returns its ``time.perf_counter()``."""
        if self.fixed_ports:
            self.port, self.admin_port = self.fixed_ports
        else:
            self.port, self.admin_port = free_port(), free_port()
            while self.admin_port == self.port:
                self.admin_port = free_port()
        env = dict(os.environ)
        env.update(self.extra_env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the bench reaches us, we stop it cleanly
        )
        return self.spawned_at

    async def first_call(
        self, path: str = "/Ping/ping", timeout: float = 60.0, since: float | None = None
    ) -> float:
        """Call ``path`` every 5 ms until it answers 200; returns seconds from ``since``
        (default: the spawn) to that answer. Connection errors and 5xx are retried."""
        t0 = self.spawned_at if since is None else since
        async with LightClient(self.url, 1, timeout=5.0) as probe:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise BenchError(
                        f"{self.name} exited with code {self.proc.returncode} before it served "
                        "a call:\n" + self.log_tail()
                    )
                try:
                    r = await probe.post(path, b"1", headers={"content-type": "application/json"})
                    if r.status_code == 200:
                        return time.perf_counter() - t0
                except LightTransportError:
                    pass
                if time.perf_counter() - t0 > timeout:
                    raise BenchError(
                        f"{self.name} served no call in {timeout:.0f} s:\n" + self.log_tail()
                    )
                await asyncio.sleep(0.005)

    async def start(self, timeout: float = 20.0, admin: bool = False) -> float:
        """Spawn and wait for ``GET /restate/health`` = 200; returns seconds to ready.

        ``admin``: then for the admin API's too (it starts once the ingress has answered:
        a workload measured before it is up shares the CPU with its imports)."""
        t0 = self.spawn()
        async with httpx.AsyncClient(timeout=1.0) as probe:
            urls = [f"{self.url}/restate/health"] + ([f"{self.admin_url}/health"] if admin else [])
            while urls:
                if self.proc.poll() is not None:
                    raise BenchError(
                        f"{self.name} exited with code {self.proc.returncode} before ready:\n"
                        + self.log_tail()
                    )
                try:
                    r = await probe.get(urls[0])
                    if r.status_code == 200:
                        urls.pop(0)
                        continue
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - t0 > timeout:
                    self.stop()
                    raise BenchError(
                        f"{self.name} not healthy after {timeout:.0f} s:\n" + self.log_tail()
                    )
                await asyncio.sleep(0.05)
        self.ready_s = time.perf_counter() - t0
        self.pids()
        return self.ready_s

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        """The runtime and its living descendants (remembered for cleanup)."""
        if self.proc is None:
            return []
        tree = process_tree(self.proc.pid) if self.alive() else []
        self._known.update(tree)
        return tree

    def rss(self) -> int:
        return sum(rss_of(p) for p in self.pids())

    def cpu(self) -> float:
        return sum(cpu_of(p) for p in self.pids())

    def logged_ready_s(self) -> float:
        """The runtime's own "ready in X s" (from its start after the imports), last one."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return float("nan")
        found = re.findall(r"ready in ([0-9.]+)s", text)
        return float(found[-1]) if found else float("nan")

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("    " + ln for ln in text.splitlines()[-lines:])

    def _reap_leftovers(self, wait: float) -> list[int]:
        """SIGKILL descendants we saw that outlived the runtime; returns those killed."""
        assert self.proc is not None
        left = [p for p in self._known if p != self.proc.pid and _same_process_alive(p)]
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = [p for p in left if _same_process_alive(p)]
        for p in left:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        return left

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; also the worker if it lingers."""
        if self.proc is None:
            return
        self.pids()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reap_leftovers(wait=2.0)
        self._close_log()

    def kill9(self, orphan_wait: float = 2.0) -> list[int]:
        """SIGKILL the runtime alone (a crash); returns worker pids that outlived it by
        ``orphan_wait`` seconds (then killed)."""
        assert self.proc is not None
        self.pids()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        left = self._reap_leftovers(wait=orphan_wait)
        self._close_log()
        return left

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _same_process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


@contextlib.asynccontextmanager
async def workspace(settings: Settings, name: str):
    """A temp folder for one workload run (stores, logs, side files)."""
    path = Path(tempfile.mkdtemp(prefix=f"durable-bench-{name}-", dir=settings.tmp_root))
    try:
        yield path
    finally:
        if not settings.keep:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def running(workdir: Path, *, env: dict[str, str] | None = None, name: str = "runtime"):
    rt = Runtime(workdir, env=env, name=name)
    try:
        await rt.start(admin=True)  # the workloads measure a runtime fully started
        try:
            yield rt
        except Exception as e:
            if isinstance(e, BenchError) and "log tail" in str(e):
                raise
            raise BenchError(f"{describe(e)}\n  {name} log tail:\n{rt.log_tail(12)}") from e
    finally:
        rt.stop()


# --------------------------------------------------------------------------------------
# HTTP


def make_client(base_url: str, connections: int, kind: str = "light") -> Any:
    """One keep-alive HTTP/1.1 client with a pool sized to the concurrency: the light
    asyncio client by default (see bench/httpclient.py), or ``kind="httpx"``."""
    if kind == "light":
        return LightClient(base_url, connections, headers={"content-type": "application/json"})
    return httpx.AsyncClient(
        base_url=base_url,
        http1=True,
        http2=False,
        limits=httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=60,
        ),
        timeout=httpx.Timeout(120.0, connect=10.0, pool=None),
        headers={"content-type": "application/json"},
    )


def body(value: Any = None) -> bytes:
    return b"" if value is None else json.dumps(value).encode()


async def post_json(
    client: Any,
    path: str,
    value: Any = None,
    *,
    expect: int = 200,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Any:
    kw: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    r = await client.post(path, content=body(value), headers=headers, **kw)
    if r.status_code != expect:
        raise BenchError(f"POST {path} -> {r.status_code} {r.text[:200]}")
    return r.json() if r.content else None


async def send(client: Any, path: str, value: Any = None) -> str:
    """A one-way send (``path`` without the /send suffix); returns the invocation id."""
    r = await client.post(path + "/send", content=body(value))
    if r.status_code not in (200, 202):
        raise BenchError(f"POST {path}/send -> {r.status_code} {r.text[:200]}")
    try:
        return r.json()["invocationId"]
    except (ValueError, KeyError) as e:
        raise BenchError(f"POST {path}/send -> no invocationId in {r.text[:200]}") from e


async def wait_result(client: Any, inv_id: str, *, deadline: float, poll: float = 0.05) -> Any:
    """Attach to ``inv_id`` until it completes; survives dropped connections by retrying
    the attach, then polling ``/output``. ``deadline`` is a ``time.perf_counter()``."""
    path = f"/restate/invocation/{inv_id}"
    last = ""
    while time.perf_counter() < deadline:
        try:
            r = await client.get(f"{path}/attach", timeout=max(1.0, deadline - time.perf_counter()))
            if r.status_code == 200:
                return r
            if r.status_code in (470, 502, 503, 504):
                last = f"attach -> {r.status_code}"
            else:
                raise BenchError(f"GET {path}/attach -> {r.status_code} {r.text[:200]}")
        except TRANSPORT_ERRORS as e:
            last = describe(e)
        await asyncio.sleep(poll)
        try:
            r = await client.get(f"{path}/output")
            if r.status_code == 200:
                return r
        except TRANSPORT_ERRORS as e:
            last = describe(e)
    raise BenchError(f"{inv_id} not completed before the deadline ({last})")


async def admin_sql(admin_url: str, sql: str, limit: int = 100_000) -> list[list[Any]]:
    """The rows of one read-only query through the admin API (``durable sql``'s route)."""
    async with LightClient(admin_url, 1, timeout=60.0) as admin:
        r = await admin.post(
            "/api/sql",
            body({"sql": sql, "limit": limit}),
            headers={"content-type": "application/json"},
        )
    if r.status_code != 200:
        raise BenchError(f"POST /api/sql -> {r.status_code} {r.text[:300]}")
    answer = r.json()
    if answer.get("truncated"):
        raise BenchError(f"POST /api/sql: more than {limit} rows for {sql[:80]!r}")
    return answer["rows"]


async def closed_loop(
    total: int, concurrency: int, one: Callable[[int], Awaitable[None]], errors: ErrorLog
) -> tuple[list[float], float]:
    """Run ``one(i)`` for i in range(total) with ``concurrency`` callers, each starting
    its next call when the last returns. Returns (latencies of successes, wall seconds)."""
    latencies: list[float] = []
    it = iter(range(total))

    async def caller() -> None:
        for i in it:
            t0 = time.perf_counter()
            try:
                await one(i)
            except Exception as e:  # counted and reported
                errors.add(describe(e))
            else:
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, time.perf_counter() - t0


def latency_metrics(prefix: str, latencies: list[float]) -> dict[str, float]:
    return {
        f"{prefix}p50_ms": percentile(latencies, 50) * 1e3,
        f"{prefix}p99_ms": percentile(latencies, 99) * 1e3,
    }


# --------------------------------------------------------------------------------------
# measuring


class RssSampler:
    """Samples runtime + descendants RSS every ``interval`` s in a thread (so a busy
    event loop does not skew the period); ``peak`` in bytes."""

    def __init__(self, rt: Runtime, interval: float = 0.1) -> None:
        self.rt = rt
        self.interval = interval
        self.peak = 0
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            v = self.rt.rss()
            self.samples.append(v)
            self.peak = max(self.peak, v)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Meter:
    """Wall time, the load generator's own CPU, and the runtime's CPU over a phase."""

    def __init__(self, rt: Runtime | None = None) -> None:
        self.rt = rt

    def __enter__(self) -> Meter:
        self.t0 = time.perf_counter()
        self.c0 = self_cpu()
        self.r0 = self.rt.cpu() if self.rt else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.client_cpu = self_cpu() - self.c0
        self.server_cpu = (self.rt.cpu() - self.r0) if self.rt and self.rt.alive() else float("nan")

    def metrics(self) -> dict[str, float]:
        return {
            "gen_cpu_s": self.client_cpu,
            "gen_wall_s": self.wall,
            "rt_cpu_s": self.server_cpu,
        }


async def warm_up(client: Any, path: str, value: Any, n: int = 5) -> None:
    """A few calls before measuring (the worker imports, the pool connects)."""
    for _ in range(n):
        try:
            await post_json(client, path, value, timeout=30.0)
        except TIMEOUTS as e:
            raise BenchError(f"warm-up call POST {path} got no answer in 30 s") from e


@dataclass
class Session:
    workdir: Path
    rt: Runtime
    client: Any


@contextlib.asynccontextmanager
async def session(
    settings: Settings,
    name: str,
    connections: int,
    env: Callable[[Path], dict[str, str]] | None = None,
):
    """A temp folder, a runtime started on a fresh store in it, and a client for it."""
    async with (
        workspace(settings, name) as wd,
        running(wd, env=env(wd) if env else None) as rt,
        make_client(rt.url, connections, settings.client) as client,
    ):
        yield Session(wd, rt, client)
