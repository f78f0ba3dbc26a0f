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

from durable.executor import Executor
from durable.messages import Abort, AttemptFailed, Start, missing_handler_message

from .discovery import handler as find_handler
from .discovery import load_app
from .errors import AppLoadError
from .framing import FrameReader, FrameWriter, Hello, Ping, Pong, encode
from .replay import ReplayRequest, replay

__all__ = ["main"]


class _Worker:
    def __init__(self, services: dict, writer: asyncio.StreamWriter, suspend_after: float) -> None:
        self.services = services
        self.suspend_after = suspend_after
        self.executors: dict[str, Executor] = {}
        self._replays: set[asyncio.Task] = set()
        self._frames = FrameWriter(writer)

    def emit(self, msg: Any) -> None:
        self._frames.send(msg)

    def on_start(self, start: Start) -> None:
        old = self.executors.pop(start.invocation_id, None)
        if old is not None:
            old.deliver(Abort(start.invocation_id, old.start.epoch))
        hdef = find_handler(self.services, start.service, start.handler)
        if hdef is None:
            self.emit(
                AttemptFailed(
                    start.invocation_id,
                    start.epoch,
                    missing_handler_message(start.service, start.handler),
                    "",
                    pause=True,
                )
            )
            return
        ex = Executor(hdef, start, self.emit, self.suspend_after)
        self.executors[start.invocation_id] = ex
        task = asyncio.get_running_loop().create_task(ex.run())
        task.add_done_callback(lambda _t: self._done(start.invocation_id, ex))

    def _done(self, inv_id: str, ex: Executor) -> None:
        if self.executors.get(inv_id) is ex:
            del self.executors[inv_id]

    def on_replay(self, req: ReplayRequest) -> None:
        hdef = find_handler(self.services, req.start.service, req.start.handler)
        task = asyncio.get_running_loop().create_task(replay(hdef, req))
        self._replays.add(task)
        task.add_done_callback(self._replay_done)

    def _replay_done(self, task: asyncio.Task) -> None:
        self._replays.discard(task)
        if not task.cancelled():
            self.emit(task.result())

    def on_message(self, msg: Any) -> None:
        if isinstance(msg, Ping):
            self.emit(Pong(msg.seq))
            return
        if isinstance(msg, Start):
            self.on_start(msg)
            return
        if isinstance(msg, ReplayRequest):
            self.on_replay(msg)
            return
        ex = self.executors.get(msg.invocation_id)
        if ex is not None and ex.start.epoch == msg.epoch:
            ex.deliver(msg)


async def _serve(fd: int, app: str, suspend_after: float) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        services = load_app(app)
    except AppLoadError as e:
        writer.write(encode(Hello(os.getpid(), error=str(e))))
        await writer.drain()
        writer.close()
        return
    writer.write(encode(Hello(os.getpid(), tuple(s.info() for s in services.values()))))
    worker = _Worker(services, writer, suspend_after)
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
    parser.add_argument("app")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    # Ctrl-C in the terminal reaches the whole process group: the runtime decides when
    # the worker stops (it closes the socket), so the worker ignores SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(_serve(args.fd, args.app, args.suspend_after))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
