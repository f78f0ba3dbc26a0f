"""The worker process: imports the app and runs handlers for the runtime.

Started by the runtime as ``python -m durable.devtool.worker_main --fd N APP``. It holds
no durable state: it receives Start/Ack/Completion/Abort frames and answers with
NewEntry/Suspend/Output/AttemptFailed frames (see :mod:`durable.messages`). If it dies,
the runtime starts another and the invocations continue by replay.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from typing import Any

from durable.host import ExecutorHost
from durable.restate_alias import install as install_restate_alias

from .discovery import load_app
from .errors import AppLoadError
from .framing import FrameReader, FrameWriter, Hello, Ping, Pong, encode
from .logcapture import Capture, LogLine
from .replay import ReplayRequest, replay

__all__ = ["main"]


class _Worker:
    """The worker's end of the socket: heartbeats and replays here, the rest to the host."""

    def __init__(self, services: dict, writer: asyncio.StreamWriter, suspend_after: float) -> None:
        self._frames = FrameWriter(writer)
        self.host = ExecutorHost(services, self._frames.send, suspend_after)
        self._replays: set[asyncio.Task] = set()

    def on_replay(self, req: ReplayRequest) -> None:
        hdef = self.host.handler(req.start.service, req.start.handler)
        task = asyncio.get_running_loop().create_task(replay(hdef, req))
        self._replays.add(task)
        task.add_done_callback(self._replay_done)

    def _replay_done(self, task: asyncio.Task) -> None:
        self._replays.discard(task)
        if not task.cancelled():
            self._frames.send(task.result())

    def send_log(self, line: LogLine) -> None:
        self._frames.send(line)

    def on_message(self, msg: Any) -> None:
        if isinstance(msg, Ping):
            self._frames.send(Pong(msg.seq))
        elif isinstance(msg, ReplayRequest):
            self.on_replay(msg)
        else:
            self.host.receive(msg)


async def _serve(fd: int, app: str, suspend_after: float, restate_alias: bool = True) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    if restate_alias:  # before the app's imports; this process is the app's alone
        install_restate_alias()
    try:
        services = load_app(app)
    except AppLoadError as e:
        writer.write(encode(Hello(os.getpid(), error=str(e))))
        await writer.drain()
        writer.close()
        return
    try:
        infos = tuple(s.info() for s in services.values())
    except Exception as e:  # a definition the app made that cannot be described
        error = f"the app's services cannot be described: {type(e).__name__}: {e}"
        writer.write(encode(Hello(os.getpid(), error=error)))
        await writer.drain()
        writer.close()
        return
    writer.write(encode(Hello(os.getpid(), infos)))
    worker = _Worker(services, writer, suspend_after)
    # handlers' prints and log records go to the runtime, tagged with their invocation
    Capture(worker.send_log, asyncio.get_running_loop(), fallback=True).install()
    frames = FrameReader(reader)
    while True:
        batch = await frames.frames()
        if batch is None:
            break
        for msg in batch:
            worker.on_message(msg)
        if writer.transport.get_write_buffer_size() > 1 << 20:
            await writer.drain()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="durable-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--suspend-after", type=float, default=1.0)
    parser.add_argument("--no-restate-alias", action="store_true")
    parser.add_argument("app")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    # Ctrl-C in the terminal reaches the whole process group: the runtime decides when
    # the worker stops (it closes the socket), so the worker ignores SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(_serve(args.fd, args.app, args.suspend_after, not args.no_restate_alias))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
