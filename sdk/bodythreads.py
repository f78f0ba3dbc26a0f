"""Threads for synchronous ``ctx.run`` bodies.

A synchronous body may block (an HTTP call, a file), so it runs on a thread, as with
``asyncio.to_thread`` and Restate's SDK. ``asyncio.to_thread`` costs a
``concurrent.futures.Future``, a chained asyncio future and one wake-up of the event loop
per call: about a third of a worker's CPU when handlers run many short steps. Here a call
is one queue put, and every body that finishes while the loop is busy is handed back in
one wake-up.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["run_in_thread", "call_in_thread"]

_MAX_THREADS = min(32, (os.cpu_count() or 1) + 4)  # as asyncio.to_thread's default pool

# (loop, sink, context, fn, args, kwargs); a sink is a future or an on_done callback
_Job = tuple[
    asyncio.AbstractEventLoop,
    Any,
    contextvars.Context,
    Callable[..., Any],
    tuple[Any, ...],
    dict[str, Any],
]
_jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
_lock = threading.Lock()
_done: dict[asyncio.AbstractEventLoop, list[tuple[Any, bool, Any]]] = {}  # (sink, ok, value)
_threads = 0
_idle = 0


def run_in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
    """Run ``fn(*args, **kwargs)`` on a body thread, with the caller's context variables;
    the returned future (of the running loop) gets its result or exception."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    _submit(loop, fut, fn, args, kwargs)
    return fut


def call_in_thread(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    on_done: Callable[[bool, Any], None],
) -> None:
    """Run ``fn`` on a body thread, then ``on_done(ok, result or exception)`` on the
    running loop (called directly when the loop takes the results back: no extra turn)."""
    _submit(asyncio.get_running_loop(), on_done, fn, args, kwargs)


def _submit(
    loop: asyncio.AbstractEventLoop,
    sink: Any,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    global _threads, _idle
    with _lock:
        start = False
        if _idle:
            _idle -= 1  # that thread takes this job (or another; the count is what matters)
        elif _threads < _MAX_THREADS:
            _threads += 1
            start = True
    _jobs.put((loop, sink, contextvars.copy_context(), fn, args, kwargs))
    if start:
        threading.Thread(target=_serve, name=f"durable-body-{_threads}", daemon=True).start()


def _serve() -> None:
    global _idle
    while True:
        loop, sink, ctx, fn, args, kwargs = _jobs.get()
        try:
            item = (sink, True, ctx.run(fn, *args, **kwargs))
        except BaseException as e:  # handed to the awaiting handler, as to_thread does
            if isinstance(e, StopIteration):  # a future cannot hold one
                e = RuntimeError(f"ctx.run body raised StopIteration: {e!r}")
            item = (sink, False, e)
        del fn, args, kwargs, ctx  # a finished body's objects are not kept by an idle thread
        with _lock:
            box = _done.setdefault(loop, [])
            box.append(item)
            first = len(box) == 1
        if first:
            try:
                loop.call_soon_threadsafe(_hand_back, loop)
            except RuntimeError:  # the loop is closed: nobody waits any more
                with _lock:
                    _done.pop(loop, None)
        del item, loop, sink
        with _lock:
            _idle += 1


def _hand_back(loop: asyncio.AbstractEventLoop) -> None:
    with _lock:
        items = _done.pop(loop, [])
    for sink, ok, value in items:
        if not isinstance(sink, asyncio.Future):
            try:
                sink(ok, value)
            except Exception as e:  # a bug in the caller's callback: the others still run
                loop.call_exception_handler({"message": "body callback failed", "exception": e})
        elif sink.cancelled():
            continue
        elif ok:
            sink.set_result(value)
        else:
            sink.set_exception(value)
