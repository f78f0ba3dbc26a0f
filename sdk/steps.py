"""``ctx.run`` bodies: run one to its outcome, retry it in place, record the outcome.

The executor takes the step's journal index and, when the step is not recorded yet,
hands the body to :class:`StepRunner`. A plain synchronous body (no retry options) goes
straight to a body thread with no task; anything else (a coroutine, retry in place, a
sync function returning an awaitable) runs in a task that retries it with backoff.

A returned value or a :class:`TerminalError` becomes the step's completed entry, given
to :meth:`StepHost.record_step` (which emits it and completes the step's future on the
runtime's Ack), as does the failure of a body that used up its retries in place. Any
other exception (a body without retry options) goes to :meth:`StepHost.step_failed`,
which fails the attempt.
"""

from __future__ import annotations

import asyncio
import inspect
import time as _time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from . import serde as _serde
from .bodythreads import call_in_thread, run_in_thread
from .context import RunOptions
from .exceptions import TerminalError
from .futures import EntryFuture
from .messages import EntryKind, Failure, JournalEntry
from .payloads import run_payload_text

__all__ = ["StepHost", "StepRunner", "run_entry", "call_action"]


def run_entry(
    index: int,
    name: str,
    result: str | None = None,
    failure: Failure | None = None,
    started: float | None = None,
) -> JournalEntry:
    """The completed journal entry of a ``ctx.run`` step; ``started`` (a
    ``time.perf_counter()`` reading) makes its payload the body's duration."""
    payload = None if started is None else run_payload_text((_clock() - started) * 1000)
    return JournalEntry(index, EntryKind.RUN, name, payload, result, failure, True)


_clock = _time.perf_counter


async def call_action(
    action: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run a ``ctx.run`` action once: an async one awaited, a sync one on a body thread
    (and what it returns awaited, if awaitable)."""
    if inspect.iscoroutinefunction(action):
        return await action(*args, **kwargs)
    value = await run_in_thread(action, *args, **kwargs)
    if inspect.isawaitable(value):
        value = await value
    return value


class StepHost(Protocol):
    """What a step runner needs from its executor."""

    @property
    def closed(self) -> bool:
        """The attempt ended (suspended, aborted, finished): record nothing more."""
        ...

    def busy(self, delta: int) -> None:
        """One more (or one fewer) body running: the handler must not suspend meanwhile."""

    def record_step(self, index: int, fut: EntryFuture, entry: JournalEntry) -> None:
        """Emit the step's entry; its Ack completes ``fut``."""

    def step_failed(self, fut: EntryFuture, e: BaseException) -> None:
        """The body failed (retryably) or was stopped: fail ``fut`` and the attempt."""


class StepRunner:
    """Runs the ``ctx.run`` bodies of one attempt (see the module docstring)."""

    def __init__(self, host: StepHost, loop: asyncio.AbstractEventLoop) -> None:
        self._host = host
        self._loop = loop
        #: Bodies not landed yet: tasks, and futures standing for body threads.
        self.pending: set[asyncio.Future[Any]] = set()

    def start(
        self,
        index: int,
        name: str,
        action: Callable[..., Any],
        opts: RunOptions[Any],
        serde: _serde.Serde[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fut: EntryFuture,
    ) -> None:
        """Run the body of step ``index``; its outcome completes ``fut`` (via the host)."""
        if (
            opts.max_attempts is None
            and opts.retry_budget is None
            and not inspect.iscoroutinefunction(action)
        ):
            # A plain synchronous body: straight to a body thread, no task (two loop turns
            # fewer per step); anything unusual goes back to the task path.
            self._host.busy(+1)
            landed = self._loop.create_future()
            self.pending.add(landed)  # awaited/cancelled alike
            started = _clock()
            call_in_thread(
                action,
                args,
                kwargs,
                lambda ok, value: self._body_done(
                    index, name, serde, fut, landed, ok, value, started
                ),
            )
            return
        self._spawn(self._run_body(index, name, action, opts, serde, args, kwargs, fut))

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def land(self) -> None:
        """Wait for bodies started but never awaited (the handler returned first)."""
        if self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)

    def cancel(self) -> None:
        """The attempt ended: stop waiting for every body still running."""
        for t in list(self.pending):
            t.cancel()

    def _body_done(
        self,
        index: int,
        name: str,
        s: _serde.Serde[Any],
        fut: EntryFuture,
        landed: asyncio.Future[None],
        ok: bool,
        value: Any,
        started: float,
    ) -> None:
        """A synchronous body (started without a task) returned or raised."""
        self.pending.discard(landed)
        if landed.done():  # the attempt ended meanwhile (abort): nothing to record
            return
        landed.set_result(None)
        host = self._host
        if host.closed:
            return
        if ok and inspect.isawaitable(value):  # a sync function returning an awaitable
            host.busy(-1)

            async def finish() -> Any:
                return await value

            self._spawn(self._run_body(index, name, finish, RunOptions(), s, (), {}, fut))
            return
        try:
            if ok:
                try:
                    entry = run_entry(index, name, _serde.encode_with(s, value), started=started)
                except TerminalError as e:  # the serde refused the value: for good
                    entry = run_entry(
                        index, name, failure=Failure(e.status_code, e.message), started=started
                    )
            elif isinstance(value, TerminalError):
                failure = Failure(value.status_code, value.message)
                entry = run_entry(index, name, failure=failure, started=started)
            else:
                raise value
        except BaseException as e:
            host.busy(-1)
            host.step_failed(fut, e)
            return
        host.record_step(index, fut, entry)

    async def _run_body(
        self,
        index: int,
        name: str,
        action: Callable[..., Any],
        opts: RunOptions[Any],
        s: _serde.Serde[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fut: EntryFuture,
    ) -> None:
        host = self._host
        host.busy(+1)
        awaiting_ack = False
        try:
            entry = await _with_retry(index, name, action, opts, s, args, kwargs)
            host.record_step(index, fut, entry)
            awaiting_ack = True
        except BaseException as e:
            host.step_failed(fut, e)
        finally:
            if not awaiting_ack:
                host.busy(-1)


async def _with_retry(
    index: int,
    name: str,
    action: Callable[..., Any],
    opts: RunOptions[Any],
    s: _serde.Serde[Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> JournalEntry:
    """Run the body until it returns, raises a TerminalError, or (retrying in place)
    uses up its budget; the step's entry. Without retry options an error propagates."""
    attempt = 0
    started = _clock()
    delay = (opts.initial_retry_interval or timedelta(milliseconds=50)).total_seconds()
    retry_in_place = opts.max_attempts is not None or opts.retry_budget is not None
    while True:
        attempt += 1
        try:
            value = await call_action(action, args, kwargs)
            return run_entry(index, name, _serde.encode_with(s, value), started=started)
        except TerminalError as e:
            return run_entry(
                index, name, failure=Failure(e.status_code, e.message), started=started
            )
        except Exception as e:
            if not retry_in_place:
                raise
            spent = timedelta(seconds=_clock() - started)
            out_of_attempts = opts.max_attempts is not None and attempt >= opts.max_attempts
            out_of_time = opts.retry_budget is not None and spent >= opts.retry_budget
            if out_of_attempts or out_of_time:
                msg = f"ctx.run({name!r}) failed after {attempt} attempts: {type(e).__name__}: {e}"
                return run_entry(index, name, failure=Failure(500, msg), started=started)
            await asyncio.sleep(delay)
            delay = min(
                delay * (opts.retry_interval_factor or 2.0),
                (opts.max_retry_interval or timedelta(seconds=10)).total_seconds(),
            )
