"""The runtime engine: invocations from request to committed output.

The engine owns every non-terminal invocation: it creates them (ingress, calls, sends),
dispatches them to a worker, turns the worker's messages into journal writes, completes
entries (timers, awakeables, promises, call results), and carries out the actions that
:mod:`durable.devtool.lifecycle` decides. It runs on one asyncio loop; every DuckDB call
goes through :class:`~durable.devtool.store.Store` (writer thread, reader threads).

This module is the facade; the parts live beside it: :mod:`.entries` (what each journal
entry kind does, as pure functions) and :mod:`.runner` (their effects), :mod:`.residency`
(which invocations are held in memory), :mod:`.keys` (object key queues), :mod:`.timers`,
:mod:`.outputs` (waiting callers), :mod:`.commands` (cancel, kill, pause...),
:mod:`.calls` (idempotent calls, attaches, awakeables, promises), :mod:`.recovery`
(start-up) and :mod:`.retention`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from durable.definitions import RetryPolicy
from durable.messages import (
    Abort,
    AttemptFailed,
    Completion,
    Failure,
    JournalEntry,
    NewEntry,
    Output,
    ServiceInfo,
    Start,
    Suspend,
)

from .. import lifecycle as lc
from ..clock import Clock, SystemClock, from_dt, to_dt
from ..errors import NotFound
from ..lifecycle import Status
from ..logcapture import LogLine
from ..store import Store, queries
from ..store.ops import (
    AppendEntry,
    InvocationRow,
    Op,
)
from . import attempts, calls, commands, completions, entries, intake, recovery, retention, runner
from .effects import Effect, SendAck
from .keys import KeyQueues
from .logs import HandlerLogs
from .model import (
    CALLS,
    CANCELLABLE,
    Active,
    EngineConfig,
    Outcome,
    WorkerLink,
    next_epoch,
    object_key,
)
from .outputs import Outputs
from .residency import Residency
from .snapshot import Snapshot
from .timers import Timers

__all__ = ["Engine", "WorkerLink", "EngineConfig", "Outcome"]

log = logging.getLogger("durable.engine")


class Engine:
    """See the module docstring."""

    def __init__(
        self,
        store: Store,
        clock: Clock | None = None,
        config: EngineConfig | None = None,
        on_event: Callable[[str, dict], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.config = config or EngineConfig()
        self.services: dict[str, ServiceInfo] = {}
        self.service_unavailable: str | None = None  # the import error when the worker fails
        self.service_unavailable_since: datetime | None = None  # when the app first failed
        self.link: WorkerLink | None = None
        self.on_event = on_event or (lambda kind, data: None)
        #: called with the worker link when a running invocation is killed (the worker
        #: supervisor restarts that worker: code stuck in a thread cannot be stopped)
        self.on_running_killed: Callable[[Any], None] = lambda link: None
        self.residency = Residency(store, self._spawn, self.config.parked_limit)
        self.keys = KeyQueues()
        self.timers = Timers(self.clock)
        self.outputs = Outputs(store, self.residency)
        self._inv = self.residency.inv  # the same dict: the hot path reads it directly
        self.idempotency = intake.Idempotency(store)
        self._no_worker: list[str] = []
        self._timer_task: asyncio.Task | None = None
        self._retention_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._completing: set[tuple[str, int]] = set()
        self._promises_completing: set[tuple[str, str, str]] = set()
        self.logs = HandlerLogs(self)

    # ------------------------------------------------------------------ helpers
    def _now(self) -> Any:
        # never cached: invocations of one key are queued again after a restart in the
        # order of their created_at, so two must not share a timestamp
        return to_dt(self.clock.now())

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task failed", exc_info=task.exception())

    def _after_commit(self, ops: list[Op], then: Iterable[Effect] = ()) -> None:
        """Queue ops; carry out the effects ``then`` once they are committed."""

        def cb(exc: BaseException | None) -> None:
            if exc is None:
                runner.run(self, then)
            else:
                log.error("write failed: %s", exc)

        self.store.write_nowait(ops, cb)

    def _policy(self, row: InvocationRow) -> RetryPolicy:
        info = self.services.get(row.service)
        if info is not None and info.retry_policy:
            return RetryPolicy.from_dict(info.retry_policy)
        return self.config.default_retry

    def _transition(self, a: Active, event: lc.Event) -> list[lc.Action]:
        before = a.row.status
        a.row, actions = lc.apply(a.row, event, self._now())
        if a.row.status != before:
            self.on_event("status", {"id": a.row.id, "status": a.row.status, "row": a.row})
        return actions

    def _run_actions(self, a: Active, actions: list[lc.Action]) -> None:
        for action in actions:
            if isinstance(action, lc.Dispatch):
                self._dispatch_soon(a)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Recover every non-terminal invocation and start the timer service."""
        await recovery.recover(self)
        self._timer_task = self._spawn(self.timers.run(self._fire))
        self._retention_task = self._spawn(retention.retention_loop(self))

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def set_link(
        self, link: WorkerLink | None, services: dict[str, ServiceInfo] | None = None
    ) -> None:
        """Route new dispatches to ``link`` (a new worker); re-dispatch what waited for one."""
        self.link = link
        if services is not None:
            self.services = services
        if link is not None:
            waiting, self._no_worker = self._no_worker, []
            for inv_id in waiting:
                a = self._inv.get(inv_id)
                if a is not None and a.row.status == Status.READY.value:
                    self._dispatch_soon(a)

    def app_failed(self, error: str | None) -> None:
        """The worker could not load the app (``error``), or it loads again (None): the
        services stay listed and new invocations wait for a worker."""
        if error is None:
            self.service_unavailable = self.service_unavailable_since = None
            return
        if self.service_unavailable is None:
            self.service_unavailable_since = self._now()
        self.service_unavailable = error

    def waits_for_app(self) -> bool:
        """True while no worker runs because the app fails to load."""
        return self.link is None and self.service_unavailable is not None

    def link_lost(self, link: WorkerLink, reason: str) -> None:
        """A worker died: every attempt running on it failed."""
        if self.link is link:
            self.link = None
        for a in list(self._inv.values()):
            if a.link is link and a.row.status == Status.RUNNING.value:
                self._attempt_failed(a, AttemptFailed(a.row.id, a.epoch, reason, ""))

    def move_running(self, old: WorkerLink) -> None:
        """Hot reload: re-dispatch attempts running on ``old`` to the current worker."""
        for a in list(self._inv.values()):
            if a.link is old and a.row.status == Status.RUNNING.value:
                old.send(Abort(a.row.id, a.epoch))
                a.row = replace(a.row, status=Status.READY.value)
                self._dispatch_soon(a)

    # ------------------------------------------------------------------ submit
    async def submit(
        self,
        service: str,
        handler: str,
        key: str | None,
        input_json: str,
        headers: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        delay_s: float = 0.0,
        *,
        durable_ack: bool = True,
    ) -> tuple[str, bool]:
        """Create an invocation (or find the one its idempotency key names).

        Returns ``(invocation id, existing)``. With ``durable_ack`` the call returns after
        the invocation is committed.
        """
        return await intake.submit(
            self, service, handler, key, input_json, headers, idempotency_key, delay_s, durable_ack
        )

    def restart_row(self, original: InvocationRow, from_index: int) -> InvocationRow:
        """The row of a new invocation that restarts ``original`` from entry
        ``from_index`` (same target and input; hand it to :meth:`adopt`)."""
        return intake.restart_row(self, original, from_index)

    async def adopt(self, row: InvocationRow, journal: list[JournalEntry]) -> InvocationRow:
        """Start an invocation built elsewhere with a journal to replay (a restart from
        entry N): commit its row and journal, queue it like a new one; returns its row."""
        return await intake.adopt(self, row, journal)

    def _enqueue(self, a: Active, delay_s: float, dispatch: bool = True) -> None:
        k = object_key(a.row)
        delay_until = to_dt(self.clock.now() + delay_s) if delay_s > 0 else None
        busy = bool(k and delay_until is None and self.keys.busy(k))
        for action in self._transition(a, lc.Submitted(key_busy=busy, delay_until=delay_until)):
            if isinstance(action, lc.ScheduleStart):
                self.timers.add(from_dt(action.at), "start", a.row.id, 0)
        if k and delay_until is None:
            if busy:
                self.keys.wait(k, a.row.id)
            else:
                self.keys.hold(k, a.row.id)
        if dispatch and a.row.status == Status.READY.value:
            self._dispatch_soon(a)

    # ------------------------------------------------------------------ dispatch
    def _dispatch_soon(self, a: Active) -> None:
        self._spawn(self._dispatch(a))

    def _dispatch_now(self, a: Active) -> None:
        """Dispatch in this loop turn when nothing must be read first (a service with its
        journal in memory), else as _dispatch_soon."""
        if a.journal is not None and a.row.service_kind not in ("object", "workflow"):
            self._start(a, None)
        else:
            self._dispatch_soon(a)

    async def _dispatch(self, a: Active) -> None:
        row = a.row
        if row.status != Status.READY.value:
            return
        await self._journal_of(a)
        assert a.journal is not None
        state = None
        if row.service_kind in ("object", "workflow"):
            if len(a.journal) > 1:
                await self.store.write([])  # this invocation's own state writes land first
            state = await self.store.state(row.service, row.key or "")
        if a.row.status != Status.READY.value or self._inv.get(row.id) is not a:
            return  # killed or cancelled meanwhile
        self._start(a, state)

    def _start(self, a: Active, state: dict[str, str] | None) -> None:
        row = a.row
        assert a.journal is not None
        link = self.link
        if link is None:
            self._no_worker.append(row.id)
            return
        self._transition(a, lc.Dispatched())
        a.epoch = next_epoch()
        a.link = link
        a.started_at = a.row.modified_at
        # "running" is not written: the store keeps the last durable status (ready,
        # suspended, backing-off), recovery treats them alike, and readers overlay the
        # live status from memory. This saves an update per invocation on the hot path.
        link.send(
            Start(
                row.id,
                row.service,
                row.handler,
                row.key,
                tuple(a.journal),
                state,
                json.loads(row.headers or "{}"),
                row.attempt,
                a.epoch,
                tuple(a.order),
            )
        )

    async def _journal_of(self, a: Active) -> list[JournalEntry]:
        """The invocation's journal, read once from the store (with its completion order)
        and then kept up to date in memory."""
        if a.journal is None:
            journal, order = await self.store.read(queries.journal_and_order, a.row.id)
            if a.journal is None:  # nobody loaded it meanwhile
                a.journal, a.order = journal, order
        return a.journal

    # ------------------------------------------------------------------ worker messages
    def on_message(self, link: WorkerLink, msg: Any) -> None:
        """Handle one message from a worker (called on the loop, in arrival order)."""
        if type(msg) is LogLine:
            self.logs.add(msg)
            return
        a = self._inv.get(msg.invocation_id)
        if a is None or a.epoch != msg.epoch or a.row.status != Status.RUNNING.value:
            return  # a stale attempt (killed, moved to another worker, retried)
        if a.held is not None:
            a.held.append((link, msg))
            return
        if isinstance(msg, NewEntry):
            self._on_entry(a, msg)
        elif isinstance(msg, Output):
            attempts.on_output(self, a, msg)
        elif isinstance(msg, Suspend):
            attempts.on_suspend(self, a, msg)
        elif isinstance(msg, AttemptFailed):
            self._attempt_failed(a, msg)

    def _on_entry(self, a: Active, msg: NewEntry) -> None:
        e = msg.entry
        journal = a.journal
        assert journal is not None
        if e.index != len(journal):
            self._attempt_failed(
                a,
                AttemptFailed(
                    a.row.id,
                    a.epoch,
                    f"protocol error: entry {e.index} arrived, expected {len(journal)}",
                    "",
                ),
            )
            return
        kind = e.kind
        if a.cancel_pending and kind in CANCELLABLE:
            a.cancel_pending = False
            step = entries.cancelled(a, e, self.clock.now())
            journal.append(step.entry)
            a.order.append(e.index)
            self._after_commit(step.ops, step.after)
            return
        if kind in CALLS and entries.needs_dedupe(e, self.services):
            journal.append(e)
            if e.completed:
                a.order.append(e.index)
            a.held = []
            self._spawn(calls.dedupe_child(self, a, e, self.clock.now()))
            return
        handler = entries.HANDLERS.get(kind)
        if handler is None:  # run, get_state, ...: only the entry (the hot path)
            journal.append(e)
            if e.completed:
                a.order.append(e.index)
            ops: list[Op] = [AppendEntry(a.row.id, e, self._now())]
            if msg.needs_ack:
                self._after_commit(ops, (SendAck(a.row.id, a.epoch, e.index, a.link),))
            else:
                self.store.write_nowait(ops)
            return
        step = handler(a, e, self.services, self.clock.now())
        e = step.entry
        journal.append(e)
        if e.completed:
            a.order.append(e.index)
        if step.now:
            runner.run(self, step.now)
        after = step.after
        if msg.needs_ack:
            after = (SendAck(a.row.id, a.epoch, e.index, a.link), *after)
        if after:
            self._after_commit(step.ops, after)
        else:
            self.store.write_nowait(step.ops)

    def _send_completion(
        self, inv_id: str, epoch: int, index: int, result: str | None, failure: Failure | None
    ) -> None:
        a = self._inv.get(inv_id)
        if (
            a is not None
            and a.epoch == epoch
            and a.link is not None
            and a.row.status == Status.RUNNING.value
        ):
            a.link.send(Completion(inv_id, epoch, index, result, failure))

    def _attempt_failed(self, a: Active, msg: AttemptFailed) -> None:
        attempts.attempt_failed(self, a, msg)

    def _finish(self, a: Active, actions: list[lc.Action]) -> None:
        attempts.finish(self, a, actions)

    def _pending(self, inv_id: str) -> bool:
        return attempts.pending(self, inv_id)

    # ------------------------------------------------------------------ completions
    def _fire(self, kind: str, inv_id: str, index: int) -> None:
        completions.fire(self, kind, inv_id, index)

    async def _complete_entry(
        self,
        inv_id: str,
        index: int,
        result: str | None,
        failure: Failure | None,
        extra: list[Op] | None = None,
    ) -> bool:
        return await completions.complete_entry(self, inv_id, index, result, failure, extra)

    def _deliver(
        self, inv_id: str, index: int, result: str | None, failure: Failure | None
    ) -> None:
        completions.deliver(self, inv_id, index, result, failure)

    async def _wake(self, inv_id: str) -> None:
        await completions.wake(self, inv_id)

    def next_timer_at(self) -> float | None:
        """When the earliest timer (sleep, delayed start, retry) is due, if any."""
        return self.timers.next_at()

    def poke_timers(self) -> None:
        """Re-check timers now (after a virtual clock moved)."""
        self.timers.poke()

    # ------------------------------------------------------------------ from outside
    async def resolve_awakeable(
        self, awakeable_id: str, result: str | None, failure: Failure | None
    ) -> str:
        """Complete an awakeable; returns the invocation id that waits on it."""
        return await calls.resolve_awakeable(self, awakeable_id, result, failure)

    async def complete_promise(
        self, service: str, key: str, name: str, payload: str, entry: tuple[str, int] | None = None
    ) -> None:
        """Resolve or reject a workflow promise (``payload``: {"result"} or {"failure"})."""
        await calls.complete_promise(self, service, key, name, payload, entry)

    async def workflow_invocation(self, workflow: str, wf_id: str) -> str:
        """The invocation id of a workflow's main run."""
        inv_id = await self.idempotency.lookup(f"workflow:{workflow}/{wf_id}", "run")
        if inv_id is None:
            raise NotFound(f"workflow {workflow} with id {wf_id!r} has not run")
        return inv_id

    async def sweep_workflows(self) -> list[tuple[str, str]]:
        """Forget finished workflows past their retention; returns (workflow, id) pairs."""
        return await retention.sweep_workflows(self)

    # ------------------------------------------------------------------ outputs
    def drop_waiter(self, inv_id: str, fut: asyncio.Future) -> None:
        """Forget a waiter of :meth:`outcome_or_waiter` whose client went away."""
        self.outputs.drop_waiter(inv_id, fut)

    async def output(self, inv_id: str, wait: bool) -> Outcome | None:
        """The outcome of an invocation; waits for it with ``wait``, else None if not done."""
        got = await self.outcome_or_waiter(inv_id, wait)
        if not isinstance(got, asyncio.Future):
            return got
        try:
            return await got
        finally:  # answered (then the list is gone), or the caller went away: forget it
            self.drop_waiter(inv_id, got)

    async def outcome_or_waiter(
        self, inv_id: str, wait: bool
    ) -> Outcome | None | asyncio.Future[Outcome]:
        """As :meth:`output`, but when it must wait, a future of the outcome (a caller that
        stops waiting hands it to :meth:`drop_waiter`)."""
        return await self.outputs.outcome_or_waiter(inv_id, wait)

    # ------------------------------------------------------------------ actions from people
    async def cancel(self, inv_id: str) -> str:
        """Cancel: the handler sees a CancelledError at its next await (it may compensate)."""
        return await commands.cancel(self, inv_id)

    async def kill(self, inv_id: str) -> str:
        """Stop at once, without compensation; kills the calls it waits on."""
        return await commands.kill(self, inv_id)

    async def pause(self, inv_id: str) -> str:
        return await commands.pause(self, inv_id)

    async def resume(self, inv_id: str) -> str:
        return await commands.resume(self, inv_id)

    def retry_now(self, predicate: Callable[[InvocationRow], bool] | None = None) -> list[str]:
        """Retry backing-off and paused invocations at once (after a reload)."""
        return commands.retry_now(self, predicate)

    async def purge(self, inv_id: str) -> None:
        await commands.purge(self, inv_id)

    # ------------------------------------------------------------------ live reads
    def snapshot(self, journal_of: str | None = None) -> Snapshot:
        """What readers on other threads need of the engine's memory (call it on the
        loop): live rows, suspended ids, key owners, and ``journal_of``'s live journal."""
        res = self.residency
        journals = {}
        a = res.inv.get(journal_of) if journal_of else None
        if journal_of and a is not None and a.journal is not None:
            journals[journal_of] = list(a.journal)
        return Snapshot(
            rows={inv_id: a.row for inv_id, a in res.inv.items()},
            suspended=res.suspended,  # membership tests only: safe from another thread
            key_owner=dict(self.keys.owner),
            journals=journals,
            queue_position=self.queue_position,
            app_error=self.service_unavailable,
            app_error_since=self.service_unavailable_since,
        )

    def live_row(self, inv_id: str) -> InvocationRow | None:
        """The row of an invocation held in memory (its live status), else None."""
        a = self._inv.get(inv_id)
        return a.row if a is not None else None

    def live_status(self, inv_id: str) -> str | None:
        """The live status of an unfinished invocation; None when the engine does not
        hold it (finished, unknown, or being read back)."""
        a = self._inv.get(inv_id)
        if a is not None:
            return a.row.status
        return Status.SUSPENDED.value if inv_id in self.residency.suspended else None

    def live_journal(self, inv_id: str) -> list[JournalEntry] | None:
        """A copy of the journal of an invocation held with its journal, else None."""
        a = self._inv.get(inv_id)
        return list(a.journal) if a is not None and a.journal is not None else None

    async def barrier(self) -> None:
        """Wait until every write queued so far is committed (then reads see it)."""
        await self.store.write([])

    def idle(self) -> bool:
        """Nothing in flight: no task but the timer and retention loops, no invocation
        ready to run or holding messages, none being read back."""
        background = (self._timer_task, self._retention_task)
        if any(t not in background and not t.done() for t in self._tasks):
            return False
        if any(
            a.row.status == Status.READY.value or a.held is not None for a in self._inv.values()
        ):
            return False
        return not self.residency.loading

    async def row(self, inv_id: str) -> InvocationRow | None:
        """The freshest row of an invocation: from memory when active, else the store."""
        a = self._inv.get(inv_id)
        if a is not None:
            return a.row
        await self.barrier()
        return await self.store.read(queries.invocation, inv_id)

    def queue_position(self, inv_id: str) -> int | None:
        """1 for the next invocation to run on its key, 2 behind it...; None unless pending."""
        a = self._inv.get(inv_id)
        k = object_key(a.row) if a is not None else None
        if a is None or k is None or a.row.status != Status.PENDING.value:
            return None
        return self.keys.position(k, inv_id, self._pending)

    def waiting_clients(self) -> int:
        """How many callers wait for an invocation's outcome (attach, or a call)."""
        return self.outputs.waiting_clients()

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {"suspended": len(self.residency.suspended)}
        for a in self._inv.values():
            out[a.row.status] = out.get(a.row.status, 0) + 1
        return out
