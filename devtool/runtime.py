"""`durable dev`: the runtime process that ties store, engine, worker and servers.

It opens the store, recovers invocations, starts the worker (or the inline executor),
serves the ingress and the admin API on 127.0.0.1, reloads the worker when files
change, and prints one line per event that matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from .discovery import load_app
from .engine import Engine
from .errors import DevtoolError
from .events import EventLog
from .ingress import create_ingress
from .store import Store, answer_now
from .workers import InlineLink, ProcessWorkers

__all__ = ["RuntimeOptions", "Runtime", "bind", "bind_all"]


@dataclass
class RuntimeOptions:
    app: str
    host: str = "127.0.0.1"
    port: int = 8080
    admin_port: int = 9070
    store: str = ".durable/durable.duckdb"
    inline: bool = False
    reload: bool = True
    suspend_after: float = 1.0
    max_body: int = 10 * 1024 * 1024
    verbose: bool = False
    watch: list[str] | None = None  # paths to watch; default: the app's folder
    hang_deadline: float = 10.0  # seconds a worker may miss heartbeats before it is killed
    restate_alias: bool = (
        True  # `import restate` in the app gives durable's (durable.restate_alias)
    )


def bind(host: str, port: int, what: str) -> socket.socket:
    """A listening socket, or a DevtoolError that says which port is taken."""
    return bind_all(host, [(port, what)])[0]


def bind_all(
    host: str, wanted: list[tuple[int, str]], store: str | None = None
) -> list[socket.socket]:
    """Listening sockets for ``(port, what)`` pairs, or one DevtoolError naming every
    taken port at once, and the durable runtime holding them when there is one."""
    socks: list[socket.socket] = []
    taken: list[tuple[int, str, str]] = []
    for port, what in wanted:
        try:
            socks.append(_listen(host, port))
        except OSError as e:
            taken.append((port, what, e.strerror or str(e)))
    if not taken:
        return socks
    for sock in socks:
        sock.close()
    where = " nor ".join(f"for the {what} on {host}:{port}" for port, what, _ in taken)
    flags = " and ".join(f"--{'admin-' if what == 'admin API' else ''}port" for _, what, _ in taken)
    holder = _durable_holder(host, [p for p, _, _ in taken], store)
    if holder:
        why = f"{holder} already runs here: stop it, use it (the CLI finds it), or pick "
    else:
        why = f"another program uses {'them' if len(taken) > 1 else 'it'}; pick "
    raise DevtoolError(
        f"cannot listen {where} ({taken[0][2]}): {why}"
        f"{'other ports' if len(taken) > 1 else 'another port'} with {flags}"
    )


def _listen(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
    # without it, a keep-alive request waits ~40 ms for a delayed ACK (Nagle)
    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    # Accepted connections inherit TCP_NODELAY: a response written as headers + body must not
    # wait for the client's delayed ACK (40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def _durable_holder(host: str, ports: list[int], store: str | None) -> str | None:
    """ "durable PID N (admin API at URL)" when a durable runtime holds one of ``ports``:
    its admin API answers there, or the store's holder file names a live runtime."""
    import json
    import urllib.request

    name = f"[{host}]" if ":" in host else host
    for port in ports:
        url = f"http://{name}:{port}"
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                health = json.loads(r.read())
        except (OSError, ValueError):
            continue
        if isinstance(health, dict) and health.get("pid"):
            return f"durable PID {health['pid']} (admin API at {url})"
    try:
        with open(os.path.abspath(store or "") + ".holder.json") as f:
            info = json.load(f)
        pid = int(info["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return f"durable PID {pid}" + (
        f" (admin API at {info['admin_url']})" if info.get("admin_url") else ""
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the runtime handles signals itself
        yield


def _answer_now(app: Any) -> Any:
    """The admin API answers 503 at once while the store is degraded, rather than wait."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        answer_now.set(True)
        await app(scope, receive, send)

    return wrapped


_ADMIN_AFTER_S = 1.0  # the longest the admin API waits for the ingress's first answer


def _first_answer(app: Any, answered: asyncio.Event) -> Any:
    """``app``, setting ``answered`` once it has sent its first whole response."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if answered.is_set():
            await app(scope, receive, send)
            return

        async def send_and_tell(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.set()

        await app(scope, receive, send_and_tell)

    return wrapped


async def _started(server: uvicorn.Server, task: asyncio.Task) -> None:
    """Wait until ``server`` serves (or its task ended: it failed to start)."""
    while not server.started and not task.done():
        await asyncio.sleep(0.005)


def console(line: str) -> None:
    print(f"[durable] {line}", flush=True)


class Runtime:
    """One `durable dev` process.

    Its console lines go to ``echo`` (stdout by default; None: nowhere) and to
    ``self.events``, which the admin API serves. ``embedded`` runs it beside a terminal
    UI in this process: no signal handlers (the caller stops it with
    :meth:`request_stop`) and the worker's output is captured into the events.
    """

    def __init__(
        self,
        opts: RuntimeOptions,
        echo: Callable[[str], None] | None = console,
        embedded: bool = False,
    ) -> None:
        self.opts = opts
        self.echo = echo
        self.embedded = embedded
        self.events = EventLog()
        self._told: set[str] = set()  # invocations whose first failure was printed whole
        self.info: dict[str, Any] | None = None  # the URLs, once it serves
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.workers: ProcessWorkers | None = None
        self.inline: InlineLink | None = None
        self._stop = asyncio.Event()

    def say(self, line: str, level: str = "info") -> None:
        self.events.add(line, level)
        if self.echo is not None:
            self.echo(line)

    def request_stop(self) -> None:
        if self.workers is not None:
            self.workers.stopping = True
        self._stop.set()

    async def run(self) -> None:
        o = self.opts
        t0 = time.perf_counter()
        ingress_sock, admin_sock = bind_all(
            o.host, [(o.port, "ingress"), (o.admin_port, "admin API")], o.store
        )
        host = f"[{o.host}]" if ":" in o.host else o.host  # an IPv6 address in a URL
        admin_url = f"http://{host}:{admin_sock.getsockname()[1]}"
        ingress_url = f"http://{host}:{ingress_sock.getsockname()[1]}"
        self.store = store = await asyncio.to_thread(
            Store.open, o.store, {"what": "durable dev", "admin_url": admin_url}
        )
        store.listen(self._store_event_from(asyncio.get_running_loop()))
        try:
            await self._serve(store, ingress_sock, admin_sock, ingress_url, admin_url, t0)
        finally:
            await asyncio.to_thread(store.close)

    async def _serve(
        self,
        store: Store,
        ingress_sock: socket.socket,
        admin_sock: socket.socket,
        ingress_url: str,
        admin_url: str,
        t0: float,
    ) -> None:
        o = self.opts
        self.engine = engine = Engine(store, on_event=self._on_event)
        worker_started = None
        if o.inline:
            if o.restate_alias:  # --inline: the app's process is this one
                from durable.restate_alias import install

                install(lambda line: self.say(line.removeprefix("[durable] ")))
            services = load_app(o.app)
            self.inline = InlineLink(engine, services, o.suspend_after)
        else:
            # The worker imports the app while the engine recovers: start-up overlaps.
            self.workers = ProcessWorkers(
                engine,
                o.app,
                o.suspend_after,
                on_console=lambda line: self.say(line, "error"),
                on_output=(lambda line: self.say(line, "output")) if self.embedded else None,
                hang_deadline_s=o.hang_deadline,
                restate_alias=o.restate_alias,
            )
            worker_started = asyncio.create_task(self.workers.start())
        await engine.start()
        if self.inline is not None:
            engine.set_link(self.inline, {s.name: s.info() for s in services.values()})
        elif worker_started is not None and not await worker_started:
            assert self.workers is not None
            self.say(f"the app failed to load:\n{self.workers.last_error}", "error")
            self.say("the runtime stays up; fix the file and it reloads")
        watcher = None
        if o.reload and not o.inline:
            watcher = asyncio.create_task(self._watch())
            watcher.add_done_callback(self._watch_ended)
            # The task's first step sets up the OS file watches (awatch does so before its
            # first await), so a file saved once the servers answer is never missed.
            await asyncio.sleep(0)
        info = {
            "ingress_url": ingress_url,
            "admin_url": admin_url,
            "store": os.path.abspath(store.path) if store.persistent else store.path,
            "app": o.app,
            "pid": os.getpid(),
        }
        # embedded: uvicorn's records go to the root logger (the TUI's log), not stderr
        quiet: dict[str, Any] = {"log_config": None} if self.embedded else {}
        loop = asyncio.get_running_loop()
        if not self.embedded:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_stop)
        # said before the ingress answers: whoever sees it serve can read these lines
        kind = "in memory (lost on exit)" if not store.persistent else store.path
        self.say(f"store: {kind}")
        for s in engine.services.values():
            self.say(f"service {s.name} [{s.kind}]")
            for h in s.handlers:
                self.say(f"    {h.name} ({h.kind}): {h.input_type} -> {h.output_type}")
        self.say(f"ingress  {ingress_url}")
        self.say(f"admin    {admin_url}")
        answered = asyncio.Event()
        ingress = _Server(
            uvicorn.Config(
                _first_answer(create_ingress(engine, o.max_body, o.host), answered),
                http="httptools",
                ws="none",  # no websockets: loading wsproto and h11 costs ~40 ms of start-up
                proxy_headers=False,  # nothing reads the client address
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_keep_alive=30,
                **quiet,
            )
        )
        servers = [ingress]
        tasks = [asyncio.create_task(ingress.serve(sockets=[ingress_sock]))]
        await _started(ingress, tasks[0])
        self.say(
            f"ready in {time.perf_counter() - t0:.2f}s (app: {o.app}{', inline' if o.inline else ''})"
        )
        # The admin API (the dashboard, jinja2: ~0.3 s of CPU to import) comes up once the
        # ingress has answered its first request (or after _ADMIN_AFTER_S): on a busy machine
        # that CPU would otherwise delay the first call. Its socket is bound already, so a
        # client connecting early only waits. The import runs on a thread. A terminal UI in
        # this process talks only to the admin API: it does not wait.
        if not self.embedded:
            waits = [asyncio.ensure_future(e.wait()) for e in (answered, self._stop)]
            await asyncio.wait(waits, timeout=_ADMIN_AFTER_S, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
        await asyncio.to_thread(importlib.import_module, f"{__package__}.admin")
        from .admin import create_admin

        admin = _Server(
            uvicorn.Config(
                _answer_now(create_admin(engine, info, self.events)),
                http="httptools",
                ws="none",
                log_level="warning",
                access_log=False,
                lifespan="off",
                **quiet,
            )
        )
        servers.append(admin)
        tasks.append(asyncio.create_task(admin.serve(sockets=[admin_sock])))
        await _started(admin, tasks[1])
        self.info = info
        await self._stop.wait()
        self.say("stopping")
        if watcher:
            watcher.cancel()
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.workers:
            await self.workers.stop()
        if self.inline:
            await self.inline.stop()
        await engine.stop()

    def _store_event_from(
        self, loop: asyncio.AbstractEventLoop
    ) -> Callable[[str, str, str | None], None]:
        """The store's listener (writer thread): its events become console lines."""

        def on_store(kind: str, text: str, invocation_id: str | None) -> None:
            def say() -> None:
                if kind == "degraded":
                    self.say(f"store degraded, new requests get 503: {text}", "error")
                elif kind == "resumed":
                    self.say(text)
                else:
                    self.say(text, "error")
                    if invocation_id is not None and self.engine is not None:
                        asyncio.ensure_future(self._pause_refused(invocation_id))

            try:
                loop.call_soon_threadsafe(say)
            except RuntimeError:  # the loop is closed (shutdown)
                pass

        return on_store

    async def _pause_refused(self, invocation_id: str) -> None:
        """Pause a live invocation whose write the store refused (its row already says so)."""
        assert self.engine is not None
        try:
            await self.engine.pause(invocation_id)
        except Exception:  # not live, or finished: the stored row is paused already
            pass

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        row = data.get("row")
        if kind == "failure" and row is not None:
            self._say_failure(row, data)
        elif kind == "log":
            self.say(data["line"], "log")
        elif kind == "waits_for_app":
            error = (self.engine.service_unavailable or "") if self.engine else ""
            self.say(
                f"{data['target']} {data['id']}: the caller waits, its request open: the app "
                f"does not load ({error.splitlines()[0] if error else 'no worker'}); it runs "
                "once the file is fixed",
                "error",
            )
        elif kind == "finished" and row is not None:
            self._told.discard(row.id)
            if self.opts.verbose:
                self.say(f"{row.service}/{row.handler} {row.id}: {row.status}")
        elif self.opts.verbose and kind == "created" and row is not None:
            self.say(f"{row.service}/{row.handler} {row.id}: {row.status}")

    def _say_failure(self, row: Any, data: dict[str, Any]) -> None:
        """An invocation's first failed attempt with its traceback; later ones (and a
        terminal failure) as one line with the file:line in the handler's code."""
        error = data.get("error") or ""
        where = f" at {data['location']}" if data.get("location") else ""
        attempt = data.get("attempt") or row.attempt
        if row.status == "failed":
            what = f"failed{where}"
        elif row.status == "paused":
            what = f"attempt {attempt} failed{where}; paused"
        else:
            what = f"attempt {attempt} failed{where}, retrying"
        head = f"{row.service}/{row.handler} {row.id}: {what}: {error.splitlines()[0] if error else ''}"
        stack = data.get("stack") or ""
        if row.status != "failed" and stack and row.id not in self._told:
            if len(self._told) >= 10_000:
                self._told.clear()
            self._told.add(row.id)
            self.say(head + "\n" + stack.rstrip(), "error")
        else:
            self.say(head, "error")

    def _watch_paths(self) -> list[str]:
        if self.opts.watch:
            return self.opts.watch
        target = self.opts.app.split(":")[0]
        if os.path.isdir(target):
            return [os.path.abspath(target)]
        if os.path.exists(target):
            return [os.path.dirname(os.path.abspath(target))]
        return [os.getcwd()]  # a module name: watch the project folder

    def _watch_ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            e = task.exception()
            self.say(
                f"file watching stopped ({type(e).__name__}: {e}): edits are not reloaded "
                "until durable dev restarts",
                "error",
            )

    async def _watch(self) -> None:
        from watchfiles import awatch

        from .reload import watch_filter

        paths = self._watch_paths()
        root = os.path.commonpath([p if os.path.isdir(p) else os.path.dirname(p) for p in paths])
        async for changes in awatch(
            *paths, watch_filter=watch_filter, debounce=150, step=20, stop_event=self._stop
        ):
            names = sorted({os.path.relpath(p, root) for _c, p in changes})
            assert self.workers is not None and self.engine is not None
            before = set(self.engine.services)
            ok, error, took = await self.workers.reload()
            if not ok:
                waiting = self.engine.waiting_clients()
                self.say(
                    f"reload failed ({', '.join(names)}); no code runs until the app loads "
                    "again: invocations wait (nothing is lost)"
                    + (f", {waiting} caller(s) with them" if waiting else "")
                    + f":\n{error}",
                    "error",
                )
                continue
            after = set(self.engine.services)
            added, removed = sorted(after - before), sorted(before - after)
            extra = (f"; added {', '.join(added)}" if added else "") + (
                f"; removed {', '.join(removed)}" if removed else ""
            )
            retried = self.engine.retry_now()
            self.say(
                f"reloaded in {took * 1000:.0f} ms ({', '.join(names)}){extra}"
                + (f"; retrying {len(retried)} failed invocation(s) now" if retried else "")
            )


def run_dev(opts: RuntimeOptions) -> int:
    """Run until SIGINT/SIGTERM; returns the exit code."""
    runtime = Runtime(opts)
    try:
        asyncio.run(runtime.run())
    except DevtoolError as e:  # store, app, ports: the message says what to do
        if opts.verbose:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
