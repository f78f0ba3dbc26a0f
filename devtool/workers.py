"""Worker links: a child process over a socketpair, or the executor in this process.

:class:`ProcessWorkers` starts the worker child, waits for its :class:`Hello`, hands
its link to the engine, and restarts it with backoff when it dies. :class:`InlineLink`
runs the executor on the runtime's own loop (``durable dev --inline``,
``durable.testing``), so breakpoints in handlers work.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from durable.messages import Completion, Start

from .framing import FrameReader, FrameWriter, Hello, Ping, Pong, read_frame
from .logcapture import Capture, LogLine
from .replay import ReplayRequest, ReplayResult

if TYPE_CHECKING:  # these make the import heavy: prespawn_worker runs before them
    from durable.definitions import ServiceDef
    from durable.executor import Executor

    from .engine import Engine

__all__ = ["ProcessLink", "ProcessWorkers", "InlineLink", "prespawn_worker"]

log = logging.getLogger("durable.workers")


def _spawn_worker(
    app: str, suspend_after: float, capture: bool, restate_alias: bool = True
) -> tuple[subprocess.Popen, socket.socket]:
    """Start ``python -m durable.devtool.worker_main`` on one end of a socketpair;
    returns the process and the runtime's end."""
    parent, child = socket.socketpair()
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durable.devtool.worker_main",
            "--fd",
            str(child.fileno()),
            "--suspend-after",
            str(suspend_after),
            *([] if restate_alias else ["--no-restate-alias"]),
            app,
        ],
        pass_fds=(child.fileno(),),
        env=env,
        stdin=subprocess.DEVNULL if capture else None,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
    )
    child.close()
    return proc, parent


# The first worker, started by `durable dev` before the runtime imports its modules and
# opens the store: its own start (interpreter, imports, the app) overlaps theirs.
_early: tuple[str, float, subprocess.Popen, socket.socket, bool] | None = None


def prespawn_worker(app: str, suspend_after: float, restate_alias: bool = True) -> None:
    """Start the first worker now; the first :class:`ProcessWorkers` with the same app
    and settings (and no output capture) takes it. An unclaimed one is killed at exit."""
    global _early
    if _early is None:
        proc, parent = _spawn_worker(app, suspend_after, False, restate_alias)
        _early = (app, suspend_after, proc, parent, restate_alias)
        atexit.register(_drop_early)


def _take_early(
    app: str, suspend_after: float, restate_alias: bool = True
) -> tuple[subprocess.Popen, socket.socket] | None:
    global _early
    if _early is None or (*_early[:2], _early[4]) != (app, suspend_after, restate_alias):
        return None
    _, _, proc, parent, _ = _early
    _early = None
    return proc, parent


def _drop_early() -> None:
    """The runtime stopped before it used the prespawned worker (a start-up error)."""
    global _early
    if _early is not None:
        _, _, proc, parent, _ = _early
        _early = None
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        parent.close()


_AT_ONCE = (Start, Completion)
_CRASH_LOOP_S = 5.0  # a worker that dies younger than this is restarted with backoff


class ProcessLink:
    """One worker process and its socket."""

    def __init__(
        self, proc: subprocess.Popen, writer: asyncio.StreamWriter, generation: int
    ) -> None:
        self.proc = proc
        self.writer = writer
        self.name = f"worker-{generation} (pid {proc.pid})"
        self.closed = False
        self.started = self.last_seen = time.monotonic()
        self._replays: dict[int, asyncio.Future] = {}
        self._frames = FrameWriter(writer)

    def send(self, msg: Any) -> None:
        if not self.closed:
            # a Start or a Completion goes at once (with what is queued before it): the
            # worker can begin while this busy turn goes on
            self._frames.send(msg, at_once=type(msg) in _AT_ONCE)

    async def replay(self, req: ReplayRequest) -> ReplayResult:
        """Replay a recorded journal in this worker (no side effects, nothing written)."""
        if self.closed:
            return ReplayResult(req.request_id, req.start.invocation_id, "unavailable", "no worker")
        fut = asyncio.get_running_loop().create_future()
        self._replays[req.request_id] = fut
        self.send(req)
        try:
            return await fut
        finally:
            self._replays.pop(req.request_id, None)

    def replay_done(self, result: ReplayResult) -> None:
        fut = self._replays.get(result.request_id)
        if fut is not None and not fut.done():
            fut.set_result(result)

    def fail_replays(self, reason: str) -> None:
        for rid, fut in list(self._replays.items()):
            if not fut.done():
                fut.set_result(ReplayResult(rid, "", "unavailable", reason))

    def stop(self) -> None:
        self.closed = True
        try:
            self.writer.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ProcessWorkers:
    """Keeps one worker process serving the engine.

    It restarts a worker that dies (with backoff), kills one that stops answering
    heartbeats (a handler blocking its event loop), swaps in a fresh worker on reload
    (health-checked by its Hello before the old one stops), and restarts the worker when
    an invocation running on it is killed (a body stuck in a thread cannot be stopped
    any other way). Invocations that were running continue on the new worker by replay.
    """

    def __init__(
        self,
        engine: Engine,
        app: str,
        suspend_after: float = 1.0,
        on_console: Callable[[str], None] | None = None,
        heartbeat_s: float = 1.0,
        hang_deadline_s: float = 10.0,
        on_output: Callable[[str], None] | None = None,
        restate_alias: bool = True,
    ) -> None:
        self.engine = engine
        self.app = app
        self.restate_alias = restate_alias
        self.suspend_after = suspend_after
        self.console = on_console or (lambda line: None)
        self.heartbeat_s = heartbeat_s
        self.hang_deadline_s = hang_deadline_s
        # None: the worker writes to this process's terminal; else each line it prints
        # (stdout and stderr) is passed here, on the loop (`durable dev --tui`).
        self.on_output = on_output
        self.current: ProcessLink | None = None
        self.generation = 0
        self.last_error: str | None = None
        self.stopping = False
        self._restart_delay = 0.2
        self._tasks: set[asyncio.Task] = set()
        self._swap_lock = asyncio.Lock()
        engine.on_running_killed = self._on_running_killed

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start_worker(self) -> tuple[ProcessLink | None, Hello]:
        """Start a worker and wait for its Hello (its services or its import error)."""
        self.generation += 1
        capture = self.on_output is not None
        early = None if capture else _take_early(self.app, self.suspend_after, self.restate_alias)
        proc, parent = early or _spawn_worker(
            self.app, self.suspend_after, capture, self.restate_alias
        )
        if capture:
            self._forward_output(proc)
        reader, writer = await asyncio.open_unix_connection(sock=parent)
        link = ProcessLink(proc, writer, self.generation)
        try:
            hello = await asyncio.wait_for(read_frame(reader), timeout=60)
            timed_out = False
        except TimeoutError:
            hello, timed_out = None, True
        if not isinstance(hello, Hello) or hello.error:
            code = None if timed_out or hello is not None else await _exit_code(proc, 1.0)
            link.stop()
            if isinstance(hello, Hello):
                return None, hello
            if code is None:
                error = "the worker did not start (no Hello within 60 s)"
            else:  # it ended before it could say anything: a crash, os._exit, a signal
                error = (
                    f"the worker exited (code {code}) before it loaded the app: "
                    "what it printed above says why"
                )
            return None, Hello(proc.pid, error=error)
        self._spawn(self._read(link, reader))
        self._spawn(self._heartbeat(link))
        return link, hello

    async def start(self) -> bool:
        """Start the first worker; False (with ``last_error``) if the app fails to load."""
        link, hello = await self.start_worker()
        if link is None:
            self._unavailable(hello.error)
            return False
        self._install(link, hello)
        return True

    def _unavailable(self, error: str | None) -> None:
        self.last_error = error
        self.engine.app_failed(error)

    def _forward_output(self, proc: subprocess.Popen) -> None:
        loop = asyncio.get_running_loop()
        out, emit = proc.stdout, self.on_output
        assert out is not None and emit is not None

        def pump() -> None:
            with out:
                for raw in out:
                    line = raw.decode("utf-8", "replace").rstrip()
                    if line and not loop.is_closed():
                        try:
                            loop.call_soon_threadsafe(emit, line)
                        except RuntimeError:  # the loop closed meanwhile
                            return

        threading.Thread(target=pump, name=f"worker-{proc.pid}-output", daemon=True).start()

    def _install(self, link: ProcessLink, hello: Hello) -> None:
        self.current = link
        self.last_error = None
        self.engine.app_failed(None)
        self.engine.set_link(link, {s.name: s for s in hello.services})

    async def reload(self) -> tuple[bool, str | None, float]:
        """Start a fresh worker; once it is healthy, move invocations to it by replay.

        If the new code fails to import, the old worker is stopped too: the services stay
        listed but unavailable (with the import error), and invocations wait for a
        worker instead of running old code or failing.
        """
        async with self._swap_lock:
            t0 = time.perf_counter()
            link, hello = await self.start_worker()
            old = self.current
            if link is None:
                self._unavailable(hello.error)
                if old is not None:
                    self.current = None
                    self.engine.set_link(None)
                    self.engine.move_running(old)
                    old.stop()
                return False, hello.error, time.perf_counter() - t0
            self._install(link, hello)
            if old is not None:
                self.engine.move_running(old)
                old.stop()
            return True, None, time.perf_counter() - t0

    def _on_running_killed(self, link: Any) -> None:
        current = self.current
        if current is not None and link is current and not self.stopping:
            self.console(f"restarting {current.name} to stop a killed invocation's running code")
            self._spawn(self.reload())

    async def _heartbeat(self, link: ProcessLink) -> None:
        seq = 0
        while not link.closed and not self.stopping:
            await asyncio.sleep(self.heartbeat_s)
            seq += 1
            link.send(Ping(seq))
            if time.monotonic() - link.last_seen > self.hang_deadline_s and not link.closed:
                self.console(
                    f"{link.name} has not answered for {self.hang_deadline_s:.0f} s "
                    "(a handler blocks its event loop?): killing it"
                )
                link.proc.kill()
                return

    async def _read(self, link: ProcessLink, reader: asyncio.StreamReader) -> None:
        engine = self.engine
        frames = FrameReader(reader)
        while True:
            batch = await frames.frames()
            if batch is None:
                break
            link.last_seen = time.monotonic()
            for msg in batch:
                if isinstance(msg, ReplayResult):
                    link.replay_done(msg)
                elif not isinstance(msg, Pong):
                    try:
                        engine.on_message(link, msg)
                    except Exception:
                        log.exception("engine failed on %r", msg)
        link.closed = True
        link.fail_replays("the worker process exited during the replay")
        for _ in range(20):
            if link.proc.poll() is not None:
                break
            await asyncio.sleep(0.01)
        code = link.proc.poll()
        if self.current is link and not self.stopping:
            self.console(f"{link.name} exited (code {code}); restarting it")
            engine.link_lost(
                link, f"the worker process died (exit code {code}) while running this invocation"
            )
            self.current = None
            # a worker that served a while crashed once: its successor starts at once (the
            # invocations it ran wait for it); one that died young may be a crash loop
            lived = time.monotonic() - link.started
            self._spawn(self._restart(at_once=lived >= _CRASH_LOOP_S))
        elif link is not self.current:
            engine.link_lost(link, "the worker was replaced")

    async def _restart(self, at_once: bool = False) -> None:
        while not self.stopping and self.current is None:
            await asyncio.sleep(0 if at_once else self._restart_delay)
            at_once = False
            async with self._swap_lock:
                if self.current is not None:
                    return
                link, hello = await self.start_worker()
                if link is not None:
                    self._restart_delay = 0.2
                    self._install(link, hello)
                    return
                self._unavailable(hello.error)
                self._restart_delay = min(self._restart_delay * 2, 5.0)

    async def stop(self) -> None:
        self.stopping = True
        if self.current is not None:
            self.current.stop()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class InlineLink:
    """Runs handlers on the runtime's own loop (no process boundary)."""

    name = "inline"

    def __init__(
        self,
        engine: Engine,
        services: dict[str, ServiceDef],
        suspend_after: float = 0.0,
        echo_output: bool = False,
    ) -> None:
        from durable.host import ExecutorHost  # the executor: only this link needs it

        self.engine = engine
        self.host = ExecutorHost(services, self._emit, suspend_after)
        # handlers' prints and log records become the engine's LogLines (echo_output:
        # prints also reach the terminal as they are, for durable.testing under pytest)
        self._capture = Capture(
            self._log, asyncio.get_running_loop(), fallback=False, echo=echo_output
        )
        self._capture.install()

    @property
    def executors(self) -> dict[str, Executor]:
        """The running attempt of each invocation (``durable.testing`` reads it)."""
        return self.host.executors

    def _emit(self, msg: Any) -> None:
        # Deliver on the next loop turn, as a socket would: the executor never re-enters.
        # The engine runs outside the handler's context (as across a socket): what the
        # runtime prints or logs there is not the handler's output.
        asyncio.get_running_loop().call_soon(
            self.engine.on_message, self, msg, context=contextvars.Context()
        )

    def _log(self, line: LogLine) -> None:
        self._emit(line)

    def send(self, msg: Any) -> None:
        if type(msg) is Start:
            self._capture.ensure()
        asyncio.get_running_loop().call_soon(self.host.receive, msg)

    async def replay(self, req: ReplayRequest) -> ReplayResult:
        """Replay a recorded journal on this loop (no side effects, nothing written)."""
        from .replay import replay

        return await replay(self.host.handler(req.start.service, req.start.handler), req)

    async def stop(self) -> None:
        self._capture.uninstall()
        await self.host.stop()


async def _exit_code(proc: subprocess.Popen, within: float) -> int | None:
    """The process's exit code once it has ended, waiting up to ``within`` seconds."""
    for _ in range(max(int(within / 0.05), 1)):
        code = proc.poll()
        if code is not None:
            return code
        await asyncio.sleep(0.05)
    return proc.poll()
