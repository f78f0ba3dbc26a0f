"""The runtime engine: invocations from request to committed output.

The engine owns every non-terminal invocation: it creates them (ingress, calls, sends),
dispatches them to a worker, turns the worker's messages into journal writes, completes
entries (timers, awakeables, promises, call results), and carries out the actions that
:mod:`durable.devtool.lifecycle` decides. It runs on one asyncio loop; every DuckDB call
goes through :class:`~durable.devtool.store.Store` (writer thread, reader threads).

Memory: running, ready, pending, scheduled, backing-off and paused invocations are kept
in memory (row, and journal while running). Suspended ones are only a set of entry
indexes they wait on; their row and journal are read back when a completion wakes them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from durable.definitions import RetryPolicy
from durable.ids import (
    idempotency_scope,
    idempotent_invocation_id,
    is_invocation_id,
    new_invocation_id,
)
from durable.messages import (
    Abort,
    Ack,
    AttemptFailed,
    Completion,
    EntryKind,
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
from ..errors import BadRequest, Conflict, NotFound
from ..lifecycle import Status
from ..store import Store, queries
from ..store.ops import (
    AppendEntry,
    ClearAllState,
    CompleteEntry,
    DeleteTimer,
    InvocationRow,
    Op,
    PurgeInvocation,
    PurgeWorkflow,
    PutAwakeable,
    PutIdempotency,
    PutInvocation,
    PutPromise,
    PutTimer,
    SetState,
)

__all__ = ["Engine", "WorkerLink", "EngineConfig", "Outcome"]

log = logging.getLogger("durable.engine")


class WorkerLink(Protocol):
    """Where the engine sends Start/Ack/Completion/Abort messages."""

    name: str

    def send(self, msg: Any) -> None: ...


@dataclass
class EngineConfig:
    default_retry: RetryPolicy = field(default_factory=RetryPolicy)
    # suspended invocations whose row and journal stay in memory, most recent first, so
    # that a short wait (a timer of seconds) wakes without reading them back
    parked_limit: int = 256


@dataclass(frozen=True)
class Outcome:
    """How an invocation ended."""

    invocation_id: str
    status: str
    output: str | None
    failure: Failure | None


@dataclass
class _Active:
    row: InvocationRow
    journal: list[JournalEntry] | None = None
    epoch: int = 0
    link: WorkerLink | None = None
    order: list[int] = field(default_factory=list)  # completed entries, in completion order
    held: list[tuple[WorkerLink, Any]] | None = None  # worker messages held (see _dedupe_child)
    cancel_pending: bool = False  # cancelled while awaiting nothing: its next await fails


_epochs = itertools.count(1)

_CANCELLED = Failure(409, "cancelled")
#: entries a cancellation completes: the awaits that can last (the others finish at once)
_CANCELLABLE = frozenset(
    {
        EntryKind.SLEEP,
        EntryKind.AWAKEABLE,
        EntryKind.CALL,
        EntryKind.GET_PROMISE,
        EntryKind.ATTACH_INVOCATION,
    }
)


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
        self.link: WorkerLink | None = None
        self.on_event = on_event or (lambda kind, data: None)
        #: called with the worker link when a running invocation is killed (the worker
        #: supervisor restarts that worker: code stuck in a thread cannot be stopped)
        self.on_running_killed: Callable[[Any], None] = lambda link: None
        self._inv: dict[str, _Active] = {}
        self._suspended: dict[str, tuple[int, ...]] = {}  # what each waits on (a tuple: small)
        self._loading: dict[str, list[tuple[int, str | None, Failure | None]]] = {}
        self._waiters: dict[str, list[asyncio.Future]] = {}
        self._attachers: dict[str, list[tuple[str, int]]] = {}
        self._key_owner: dict[tuple[str, str], str] = {}
        self._key_queue: dict[tuple[str, str], deque[str]] = {}
        # idempotency records being written: held until DuckDB has them (see _idempotent)
        self._idem: dict[tuple[str, str], str] = {}
        self._idem_forgotten = 0
        self._no_worker: deque[str] = deque()
        self._timers: list[tuple[float, int, str, str, int]] = []
        self._timer_seq = itertools.count()
        self._timer_wake = asyncio.Event()
        self._timer_task: asyncio.Task | None = None
        self._retention_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._completing: set[tuple[str, int]] = set()
        self._promises_completing: set[tuple[str, str, str]] = set()
        self._suspending: dict[str, asyncio.Future] = {}  # suspension writes in flight
        # The most recently suspended invocations, kept whole (bounded): _load takes them
        # from here instead of the store. Code that changes a suspended invocation's row
        # or journal must bring it in with _load first (or drop it from here).
        self._parked: OrderedDict[str, _Active] = OrderedDict()
        self._load_batch: dict[str, asyncio.Future] = {}
        # awakeables of the invocations held in memory (running or parked): id -> entry
        self._awakeables: dict[str, tuple[str, int]] = {}

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

    def _after_commit(self, ops: list[Op], fn: Callable[[], None]) -> None:
        """Queue ops; run ``fn`` on the loop once they are committed."""

        def cb(exc: BaseException | None) -> None:
            if exc is None:
                fn()
            else:
                log.error("write failed: %s", exc)

        self.store.write_nowait(ops, cb)

    def _policy(self, row: InvocationRow) -> RetryPolicy:
        info = self.services.get(row.service)
        if info is not None and info.retry_policy:
            return RetryPolicy.from_dict(info.retry_policy)
        return self.config.default_retry

    def _transition(self, a: _Active, event: lc.Event) -> list[lc.Action]:
        before = a.row.status
        a.row, actions = lc.apply(a.row, event, self._now())
        if a.row.status != before:
            self.on_event("status", {"id": a.row.id, "status": a.row.status, "row": a.row})
        return actions

    @staticmethod
    def _object_key(row: InvocationRow) -> tuple[str, str] | None:
        if row.service_kind == "object" and row.handler_kind == "exclusive":
            return (row.service, row.key or "")
        return None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Recover every non-terminal invocation and start the timer service."""
        self._loop = asyncio.get_running_loop()
        rows = await self.store.read(queries.active_invocations)
        timers = await self.store.read(queries.pending_timers)
        for inv_id, idx, fire_at in timers:
            self._add_timer(from_dt(fire_at), "sleep", inv_id, idx)
        await self._recover_waits()
        waiting: dict[tuple[str, str], list[InvocationRow]] = {}
        for row in rows:
            st = Status(row.status)
            k = self._object_key(row)
            if st is Status.SUSPENDED:
                self._suspended[row.id] = tuple(json.loads(row.waiting_on or "[]"))
                if k:
                    self._key_owner[k] = row.id
                continue
            a = _Active(row)
            self._inv[row.id] = a
            if k and st in (Status.PENDING, Status.READY):
                waiting.setdefault(k, []).append(row)  # owner or queue: decided below
                continue
            if st is Status.SCHEDULED:
                self._add_timer(
                    from_dt(row.scheduled_at) if row.scheduled_at else 0, "start", row.id, 0
                )
                continue
            if k:
                self._key_owner[k] = row.id
            if st is Status.RUNNING:
                a.row = replace(row, status=Status.READY.value)
                self._dispatch_soon(a)
            elif st is Status.READY:
                self._dispatch_soon(a)
            elif st is Status.BACKING_OFF:
                at = from_dt(row.next_retry_at) if row.next_retry_at else 0
                self._add_timer(at, "retry", row.id, 0)
        self._recover_key_queues(waiting)
        # pending invocations whose key has no owner (the owner completed before a crash)
        for k, q in list(self._key_queue.items()):
            if k not in self._key_owner and q:
                self._release_key(k, None)
        # suspended invocations whose completion was committed but not delivered
        for inv_id in await self.store.read(queries.woken_suspended):
            self._spawn(self._wake(inv_id))
        # cancellations requested but not yet seen by the handler
        for row in rows:
            if row.cancel_requested:
                self._spawn(self._recover_cancel(row.id))
        self._timer_task = self._spawn(self._timer_loop())
        self._retention_task = self._spawn(self._retention_loop())

    def _recover_key_queues(self, waiting: dict[tuple[str, str], list[InvocationRow]]) -> None:
        """Rebuild each key's inbox from the ready and pending rows of exclusive handlers.

        A ready row is the key's owner unless an invocation in progress (running,
        suspended, backing-off, paused) holds the key; at most one row runs per key even
        if a crash left more than one ready. The queue keeps arrival order: the time a row
        became pending (``modified_at``), then its time-ordered id.
        """
        for k, group in waiting.items():
            group.sort(key=lambda r: (r.status != Status.READY.value, r.modified_at, r.id))
            q = self._key_queue.setdefault(k, deque())
            for r in group:
                a = self._inv[r.id]
                if r.status == Status.READY.value and k not in self._key_owner:
                    self._key_owner[k] = r.id
                    self._dispatch_soon(a)
                    continue
                if r.status == Status.READY.value:
                    a.row = replace(r, status=Status.PENDING.value)
                    self.store.write_nowait([PutInvocation(a.row)])
                q.append(r.id)

    async def _recover_waits(self) -> None:
        """Calls and attaches still waiting at start: complete those whose target ended
        while nobody could deliver its result; re-register the attached ones."""
        waits = await self.store.read(queries.pending_waits)
        targets: dict[tuple[str, int], tuple[str, str]] = {}
        for inv_id, idx, kind, name, payload in waits:
            if kind == EntryKind.ATTACH_INVOCATION.value:
                target = name or ""
            else:
                target = json.loads(payload or "{}").get("invocation_id", "")
            targets[(inv_id, idx)] = (kind, target)
        found = await self.store.read(queries.outcomes, sorted({t for _, t in targets.values()}))
        for (inv_id, idx), (kind, target) in targets.items():
            info = found.get(target)
            if info is None:
                failure = Failure(404, f"unknown invocation {target}")
                self._spawn(self._complete_entry(inv_id, idx, None, failure))
                continue
            status, parent_id, parent_entry, output, failure = info
            if Status(status) in lc.TERMINAL:
                self._spawn(self._complete_entry(inv_id, idx, output, failure))
            elif kind != EntryKind.CALL.value or (parent_id, parent_entry) != (inv_id, idx):
                self._attachers.setdefault(target, []).append((inv_id, idx))

    async def _recover_cancel(self, inv_id: str) -> None:
        a = self._inv.get(inv_id) or await self._load(inv_id)
        if a is None or not a.row.cancel_requested:
            return
        journal = await self._journal_of(a)
        if not any(e.failure == _CANCELLED for e in journal):
            await self._deliver_cancel(a)

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
            while self._no_worker:
                inv_id = self._no_worker.popleft()
                a = self._inv.get(inv_id)
                if a is not None and a.row.status == Status.READY.value:
                    self._dispatch_soon(a)

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
        info = self.services.get(service)
        if info is None:
            if self.service_unavailable:
                raise NotFound(
                    f"service {service!r} is not available: the app failed to load "
                    f"({self.service_unavailable.splitlines()[0]})"
                )
            known = ", ".join(sorted(self.services)) or "none"
            raise NotFound(f"unknown service {service!r} (known services: {known})")
        hinfo = next((h for h in info.handlers if h.name == handler), None)
        if hinfo is None:
            known = ", ".join(h.name for h in info.handlers)
            raise NotFound(f"service {service!r} has no handler {handler!r} (handlers: {known})")
        if info.kind in ("object", "workflow") and key is None:
            raise BadRequest(
                f"{service} is a {'virtual object' if info.kind == 'object' else 'workflow'}: "
                f"call it as /{service}/{{key}}/{handler}"
            )
        if info.kind == "service" and key is not None:
            raise BadRequest(f"{service} is a service, it takes no key: call /{service}/{handler}")
        scope = f"{service}/{key or ''}/{handler}"
        if info.kind == "workflow":
            wf_scope = f"workflow:{service}/{key}"
            if hinfo.kind == "workflow":
                scope, idempotency_key = wf_scope, "run"
            else:
                existing = await self._idempotent(wf_scope, "run")
                if existing is None:
                    main = next((h.name for h in info.handlers if h.kind == "workflow"), "run")
                    raise NotFound(
                        f"workflow {service} with id {key!r} has not run: start it with "
                        f"POST /{service}/{key}/{main} first"
                    )
        if idempotency_key:
            existing = await self._idempotent(scope, idempotency_key)
            if existing is not None:
                return existing, True
        inv_id = (
            idempotent_invocation_id(scope, idempotency_key)
            if idempotency_key
            else new_invocation_id()
        )
        if idempotency_key:
            self._idem[(scope, idempotency_key)] = inv_id
        now = self._now()
        row = self._new_row(
            inv_id,
            info.kind,
            hinfo.kind,
            service,
            handler,
            key,
            input_json,
            headers,
            idempotency_key,
            now,
        )
        ops: list[Op] = [
            PutInvocation(row, new=True),
            AppendEntry(
                inv_id, JournalEntry(0, EntryKind.INPUT, None, input_json, None, None, True), now
            ),
        ]
        if idempotency_key:
            ops.append(PutIdempotency(scope, idempotency_key, inv_id, now))
        a = _Active(row, [ops[1].entry])  # type: ignore[union-attr]
        self._inv[inv_id] = a
        self.on_event("created", {"id": inv_id, "row": row})
        self._enqueue(a, delay_s, dispatch=False)
        ops[0] = PutInvocation(a.row, new=True)  # as enqueued: ready, pending or scheduled
        fut = self.store.write(ops)
        if a.row.status == Status.READY.value:
            self._dispatch_now(a)
        if durable_ack:
            await fut
        if idempotency_key:
            self._forget_idempotent(scope, idempotency_key)
        return inv_id, False

    async def _idempotent(self, scope: str, key: str) -> str | None:
        """The invocation an idempotency key names, if any (being written or in the store)."""
        while True:
            found = self._idem.get((scope, key))
            if found is not None:
                return found
            forgotten = self._idem_forgotten
            found = await self.store.read(queries.idempotent_invocation, scope, key)
            if found is not None or forgotten == self._idem_forgotten:
                return found or self._idem.get((scope, key))
            # a record left memory for DuckDB while the read ran, perhaps after its snapshot

    def _forget_idempotent(self, scope: str, key: str) -> None:
        """Drop a record from memory once DuckDB holds it (after its write is queued)."""

        def forget() -> None:
            self._idem.pop((scope, key), None)
            self._idem_forgotten += 1

        self.store.after_apply(forget)

    async def adopt(self, row: InvocationRow, journal: list[JournalEntry]) -> InvocationRow:
        """Start an invocation built elsewhere with a journal to replay (a restart from
        entry N): commit its row and journal, queue it like a new one; returns its row."""
        a = _Active(row, list(journal))
        self._inv[row.id] = a
        self.on_event("created", {"id": row.id, "row": row})
        self._enqueue(a, 0.0)
        now = self._now()
        await self.store.write(
            [PutInvocation(a.row, new=True), *(AppendEntry(row.id, e, now) for e in journal)]
        )
        return a.row

    def _new_row(
        self,
        inv_id: str,
        service_kind: str,
        handler_kind: str,
        service: str,
        handler: str,
        key: str | None,
        input_json: str,
        headers: dict[str, str] | None,
        idempotency_key: str | None,
        now: Any,
        parent: tuple[str, int] | None = None,
        restarted_from: str | None = None,
    ) -> InvocationRow:
        return InvocationRow(
            id=inv_id,
            service=service,
            handler=handler,
            key=key,
            service_kind=service_kind,
            handler_kind=handler_kind,
            status=Status.READY.value,
            input=input_json,
            headers=json.dumps(headers or {}),
            idempotency_key=idempotency_key,
            output=None,
            failure_code=None,
            failure_message=None,
            attempt=1,
            next_retry_at=None,
            last_error=None,
            last_error_stack=None,
            waiting_on=None,
            parent_id=parent[0] if parent else None,
            parent_entry=parent[1] if parent else None,
            restarted_from=restarted_from,
            scheduled_at=None,
            cancel_requested=False,
            journal_length=1,
            created_at=now,
            modified_at=now,
            completed_at=None,
        )

    def _enqueue(self, a: _Active, delay_s: float, dispatch: bool = True) -> None:
        k = self._object_key(a.row)
        delay_until = to_dt(self.clock.now() + delay_s) if delay_s > 0 else None
        busy = bool(k and delay_until is None and k in self._key_owner)
        for action in self._transition(a, lc.Submitted(key_busy=busy, delay_until=delay_until)):
            if isinstance(action, lc.ScheduleStart):
                self._add_timer(from_dt(action.at), "start", a.row.id, 0)
        if k and delay_until is None:
            if busy:
                self._key_queue.setdefault(k, deque()).append(a.row.id)
            else:
                self._key_owner[k] = a.row.id
        if dispatch and a.row.status == Status.READY.value:
            self._dispatch_soon(a)

    # ------------------------------------------------------------------ dispatch
    def _dispatch_soon(self, a: _Active) -> None:
        self._spawn(self._dispatch(a))

    def _dispatch_now(self, a: _Active) -> None:
        """Dispatch in this loop turn when nothing must be read first (a service with its
        journal in memory), else as _dispatch_soon."""
        if a.journal is not None and a.row.service_kind not in ("object", "workflow"):
            self._start(a, None)
        else:
            self._dispatch_soon(a)

    async def _dispatch(self, a: _Active) -> None:
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

    def _start(self, a: _Active, state: dict[str, str] | None) -> None:
        row = a.row
        assert a.journal is not None
        link = self.link
        if link is None:
            self._no_worker.append(row.id)
            return
        self._transition(a, lc.Dispatched())
        a.epoch = next(_epochs)
        a.link = link
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

    async def _journal_of(self, a: _Active) -> list[JournalEntry]:
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
        a = self._inv.get(msg.invocation_id)
        if a is None or a.epoch != msg.epoch or a.row.status != Status.RUNNING.value:
            return  # a stale attempt (killed, moved to another worker, retried)
        if a.held is not None:
            a.held.append((link, msg))
            return
        if isinstance(msg, NewEntry):
            self._on_entry(a, msg)
        elif isinstance(msg, Output):
            self._on_output(a, msg)
        elif isinstance(msg, Suspend):
            self._on_suspend(a, msg)
        elif isinstance(msg, AttemptFailed):
            self._attempt_failed(a, msg)

    def _on_entry(self, a: _Active, msg: NewEntry) -> None:
        e = msg.entry
        assert a.journal is not None
        if e.index != len(a.journal):
            self._attempt_failed(
                a,
                AttemptFailed(
                    a.row.id,
                    a.epoch,
                    f"protocol error: entry {e.index} arrived, expected {len(a.journal)}",
                    "",
                ),
            )
            return
        row = a.row
        now = self._now()
        ops: list[Op] = []
        after: Callable[[], None] | None = None
        kind = e.kind
        epoch = a.epoch
        if a.cancel_pending and kind in _CANCELLABLE:
            self._append_cancelled(a, e, now)
            return
        if kind in (EntryKind.CALL, EntryKind.ONE_WAY_CALL) and self._needs_dedupe(e):
            a.journal.append(e)
            if e.completed:
                a.order.append(e.index)
            a.held = []
            self._spawn(self._dedupe_child(a, e, now))
            return
        if kind is EntryKind.SLEEP:
            ms = json.loads(e.payload or "{}").get("duration_ms", 0)
            wake = self.clock.now() + ms / 1000.0
            e = replace(e, payload=json.dumps({"duration_ms": ms, "wake_at": int(wake * 1000)}))
            ops.append(PutTimer(row.id, e.index, to_dt(wake)))
            self._add_timer(wake, "sleep", row.id, e.index)
        elif kind is EntryKind.TIME:
            e = replace(e, result=json.dumps(self.clock.now()), completed=True)
            result = e.result
            after = lambda: self._send_completion(row.id, epoch, e.index, result, None)  # noqa: E731
        elif kind in (EntryKind.SET_STATE, EntryKind.CLEAR_STATE):
            value = e.payload if kind is EntryKind.SET_STATE else None
            ops.append(
                SetState(row.service, row.key or "", e.name or "", value, row.id, e.index, now)
            )
        elif kind is EntryKind.CLEAR_ALL_STATE:
            ops.append(ClearAllState(row.service, row.key or "", row.id, e.index, now))
        elif kind is EntryKind.AWAKEABLE:
            awk = json.loads(e.payload or "{}")["id"]
            ops.append(PutAwakeable(awk, row.id, e.index, now))
            self._awakeables[awk] = (row.id, e.index)
        elif kind in (EntryKind.CALL, EntryKind.ONE_WAY_CALL):
            child_ops, after = self._child(a, e, now)
            ops.extend(child_ops)
        elif kind in (EntryKind.GET_PROMISE, EntryKind.PEEK_PROMISE, EntryKind.COMPLETE_PROMISE):
            after = lambda: self._spawn(self._promise_entry(row, e))  # noqa: E731
        elif kind is EntryKind.COMPLETE_AWAKEABLE:
            after = lambda: self._spawn(self._awakeable_from_entry(e))  # noqa: E731
        elif kind is EntryKind.CANCEL_INVOCATION:
            target = json.loads(e.payload or "{}").get("invocation_id", "")
            after = lambda: self._spawn(self._quiet(self.cancel(target)))  # noqa: E731
        elif kind is EntryKind.ATTACH_INVOCATION:
            target = json.loads(e.payload or "{}").get("invocation_id", "")
            after = lambda: self._spawn(self._attach_entry(row.id, e.index, target))  # noqa: E731
        a.journal.append(e)
        if e.completed:
            a.order.append(e.index)
        ops.insert(0, AppendEntry(row.id, e, now))
        if msg.needs_ack:
            link = a.link
            ack = Ack(row.id, epoch, e.index)
            inner = after

            def after_ack() -> None:
                cur = self._inv.get(row.id)
                if cur is not None and cur.epoch == epoch and link is not None:
                    link.send(ack)
                if inner:
                    inner()

            self._after_commit(ops, after_ack)
        elif after is not None:
            self._after_commit(ops, after)
        else:
            self.store.write_nowait(ops)

    def _append_cancelled(self, a: _Active, e: JournalEntry, now: Any) -> None:
        """The first await started after a cancel that found nothing to cancel: record it
        failed with the cancellation (no timer, no callee), so the handler sees it now."""
        assert a.journal is not None
        a.cancel_pending = False
        row, epoch = a.row, a.epoch
        e = replace(e, failure=_CANCELLED, completed=True)
        a.journal.append(e)
        a.order.append(e.index)
        ops: list[Op] = [AppendEntry(row.id, e, now)]
        if e.kind is EntryKind.AWAKEABLE:  # resolving it later is a clear 409, not a 404
            ops.append(PutAwakeable(json.loads(e.payload or "{}")["id"], row.id, e.index, now))
        self._after_commit(
            ops, lambda: self._send_completion(row.id, epoch, e.index, None, _CANCELLED)
        )

    def _needs_dedupe(self, e: JournalEntry) -> bool:
        """A call or send with an idempotency key, or to a workflow's main handler."""
        p = json.loads(e.payload or "{}")
        if p.get("idempotency_key"):
            return True
        info = self.services.get(p.get("service", ""))
        hinfo = (
            next((h for h in info.handlers if h.name == p.get("handler")), None) if info else None
        )
        return hinfo is not None and hinfo.kind == "workflow"

    async def _dedupe_child(self, parent: _Active, e: JournalEntry, now: Any) -> None:
        """Reach the invocation an idempotency key (or a workflow id) names, creating it
        only if there is none; a call to an existing one waits for its result.

        The lookup reads the store, so the caller's later messages are held meanwhile:
        its journal is still written in index order, and its call entry in the same
        commit as the invocation it creates.
        """
        row = parent.row
        try:
            p = json.loads(e.payload or "{}")
            service, handler, key = p["service"], p["handler"], p.get("key")
            info = self.services.get(service)
            hinfo = next((h for h in info.handlers if h.name == handler), None) if info else None
            if info is None or hinfo is None:
                child_ops, after = self._child(parent, e, now)
                self._after_commit([AppendEntry(row.id, e, now), *child_ops], after or _noop)
                return
            workflow_main = hinfo.kind == "workflow"
            idem = "run" if workflow_main else p["idempotency_key"]
            scope = idempotency_scope(service, handler, key, workflow_main)
            existing = await self._idempotent(scope, idem)
            target = existing or idempotent_invocation_id(scope, idem)
            if target != p["invocation_id"]:  # named by a generic call: record the real one
                p["invocation_id"] = target
                result = json.dumps(target) if e.kind is EntryKind.ONE_WAY_CALL else e.result
                e2 = replace(e, payload=json.dumps(p), result=result)
                if parent.journal is not None and parent.journal[e.index] is e:
                    parent.journal[e.index] = e2
                e = e2
            ops: list[Op] = [AppendEntry(row.id, e, now)]
            if existing is None:
                child_ops, start_child = self._child(parent, e, now)
                ops += [*child_ops, PutIdempotency(scope, idem, target, now)]
                self._idem[(scope, idem)] = target

                self._after_commit(ops, start_child or _noop)
                self._forget_idempotent(scope, idem)
            elif e.kind is EntryKind.CALL:
                idx = e.index
                self._after_commit(
                    ops, lambda: self._spawn(self._attach_entry(row.id, idx, target))
                )
            else:
                self.store.write_nowait(ops)
        except Exception:
            log.exception("call %s of %s failed", e.index, row.id)
            self.store.write_nowait([AppendEntry(row.id, e, now)])
            if e.kind is EntryKind.CALL:
                failure = Failure(500, "the runtime could not start this call")
                self._after_commit(
                    [], lambda: self._spawn(self._complete_entry(row.id, e.index, None, failure))
                )
        finally:
            held, parent.held = parent.held or [], None
            for i, (link, m) in enumerate(held):
                self.on_message(link, m)
                if parent.held is not None:  # held again by a later call: keep the order
                    parent.held.extend(held[i + 1 :])
                    break

    @staticmethod
    async def _quiet(coro: Any) -> None:
        try:
            await coro
        except Exception as e:  # a handler's cancel of an unknown id is not fatal
            log.info("%s", e)

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

    def _child(
        self, parent: _Active, e: JournalEntry, now: Any
    ) -> tuple[list[Op], Callable[[], None] | None]:
        p = json.loads(e.payload or "{}")
        service, handler, key = p["service"], p["handler"], p.get("key")
        child_id = p["invocation_id"]
        one_way = e.kind is EntryKind.ONE_WAY_CALL
        info = self.services.get(service)
        hinfo = next((h for h in info.handlers if h.name == handler), None) if info else None
        if info is None or hinfo is None:
            failure = Failure(404, f"unknown handler {service}/{handler}")
            if one_way:
                log.warning("one-way send to unknown handler %s/%s dropped", service, handler)
                return [], None
            pid, idx = parent.row.id, e.index
            return [], lambda: self._spawn(self._complete_entry(pid, idx, None, failure))
        row = self._new_row(
            child_id,
            info.kind,
            hinfo.kind,
            service,
            handler,
            key,
            p.get("input") or "null",
            p.get("headers"),
            p.get("idempotency_key"),
            now,
            parent=None if one_way else (parent.row.id, e.index),
        )
        delay_s = (p.get("delay_ms") or 0) / 1000.0
        wake = self.clock.now() + delay_s
        if delay_s > 0:  # a delayed send is stored scheduled: it survives a restart as such
            row = replace(row, status=Status.SCHEDULED.value, scheduled_at=to_dt(wake))
        ops: list[Op] = [
            PutInvocation(row, new=True),
            AppendEntry(
                child_id, JournalEntry(0, EntryKind.INPUT, None, row.input, None, None, True), now
            ),
        ]

        def start_child() -> None:
            c = _Active(row, [JournalEntry(0, EntryKind.INPUT, None, row.input, None, None, True)])
            self._inv[child_id] = c
            self.on_event("created", {"id": child_id, "row": row})
            self._enqueue(c, max(wake - self.clock.now(), 0.001) if delay_s > 0 else 0.0)
            if c.row.status != row.status:  # pending behind its key
                self.store.write_nowait([PutInvocation(c.row)])

        return ops, start_child

    def _on_suspend(self, a: _Active, msg: Suspend) -> None:
        assert a.journal is not None
        done = [i for i in msg.waiting_on if i < len(a.journal) and a.journal[i].completed]
        if done:  # a completion crossed the suspension: run it again at once
            a.row = replace(a.row, status=Status.READY.value)
            self._dispatch_soon(a)
            return
        self._transition(a, lc.Suspended(msg.waiting_on))
        a.row = replace(a.row, journal_length=len(a.journal))
        inv_id = a.row.id
        self._suspended[inv_id] = tuple(msg.waiting_on)
        del self._inv[inv_id]
        a.link = None
        self._parked[inv_id] = a
        if len(self._parked) > self.config.parked_limit:
            self._forget_awakeables(self._parked.popitem(last=False)[1])
        # what _load reads back must be committed first: remember the write until then
        self._suspending[inv_id] = fut = self.store.write([PutInvocation(a.row)])
        fut.add_done_callback(
            lambda f: self._suspending.get(inv_id) is f and self._suspending.pop(inv_id)
        )

    def _attempt_failed(self, a: _Active, msg: AttemptFailed) -> None:
        actions = self._transition(
            a,
            lc.AttemptFailed(
                msg.error, msg.stack, self._policy(a.row), msg.nondeterminism, msg.pause
            ),
        )
        a.link = None
        self.store.write_nowait([PutInvocation(a.row)])
        self.on_event(
            "failure",
            {
                "id": a.row.id,
                "row": a.row,
                "error": msg.error,
                "nondeterminism": msg.nondeterminism,
            },
        )
        for action in actions:
            if isinstance(action, lc.ScheduleRetry):
                self._add_timer(from_dt(action.at), "retry", a.row.id, 0)

    def _on_output(self, a: _Active, msg: Output) -> None:
        assert a.journal is not None
        out = JournalEntry(
            len(a.journal), EntryKind.OUTPUT, None, None, msg.result, msg.failure, True
        )
        a.journal.append(out)
        actions = self._transition(a, lc.Finished(msg.result, msg.failure, len(a.journal)))
        now = self._now()
        self._after_commit(
            [AppendEntry(a.row.id, out, now), PutInvocation(a.row)],
            lambda: self._finish(a, actions),
        )

    def _forget_awakeables(self, a: _Active) -> None:
        for e in a.journal or ():
            if e.kind is EntryKind.AWAKEABLE:
                self._awakeables.pop(json.loads(e.payload or "{}").get("id", ""), None)

    def _finish(self, a: _Active, actions: list[lc.Action]) -> None:
        row = a.row
        if self._inv.get(row.id) is a:
            del self._inv[row.id]
        self._forget_awakeables(a)
        failure = (
            Failure(row.failure_code, row.failure_message or "")
            if row.failure_code is not None
            else None
        )
        outcome = Outcome(row.id, row.status, row.output, failure)
        for action in actions:
            if isinstance(action, lc.AbortAttempt) and a.link is not None:
                a.link.send(Abort(row.id, a.epoch))
            elif isinstance(action, lc.ReleaseKey):
                k = self._object_key(row)
                if k is not None:
                    self._release_key(k, row.id)
            elif isinstance(action, lc.Respond):
                for fut in self._waiters.pop(row.id, []):
                    if not fut.done():
                        fut.set_result(outcome)
                if row.parent_id is not None and row.parent_entry is not None:
                    self._spawn(
                        self._complete_entry(row.parent_id, row.parent_entry, row.output, failure)
                    )
                for inv_id, idx in self._attachers.pop(row.id, []):
                    self._spawn(self._complete_entry(inv_id, idx, row.output, failure))
        self.on_event("finished", {"id": row.id, "row": row})

    def _release_key(self, k: tuple[str, str], owner: str | None) -> None:
        if owner is not None and self._key_owner.get(k) != owner:
            return
        self._key_owner.pop(k, None)
        q = self._key_queue.get(k)
        while q:
            nxt = self._inv.get(q.popleft())
            if nxt is None or nxt.row.status != Status.PENDING.value:
                continue
            self._key_owner[k] = nxt.row.id
            self._transition(nxt, lc.KeyAcquired())
            self._dispatch_soon(nxt)
            break
        if q is not None and not q:
            self._key_queue.pop(k, None)

    # ------------------------------------------------------------------ completions
    def _complete_timer_now(self, inv_id: str, index: int) -> bool:
        """A fired sleep of an invocation held in memory with its journal: complete it
        without a task (what _complete_entry does without its reads), delivered once
        committed. False: not that case, use _complete_entry."""
        a = self._inv.get(inv_id)
        if a is None or a.journal is None or (inv_id, index) in self._completing:
            return False
        if index < len(a.journal) and not a.journal[index].completed:
            a.journal[index] = replace(a.journal[index], result="null", completed=True)
            a.order.append(index)  # a second completion now sees it completed: dropped
            self._after_commit(
                [
                    CompleteEntry(inv_id, index, "null", None, self._now()),
                    DeleteTimer(inv_id, index),
                ],
                lambda: self._deliver(inv_id, index, "null", None),
            )
        return True

    async def _complete_entry(
        self,
        inv_id: str,
        index: int,
        result: str | None,
        failure: Failure | None,
        extra: list[Op] | None = None,
    ) -> bool:
        """Complete an entry durably, then deliver it (live, or by waking the invocation).

        An entry is completed once: a later completion (a timer firing after a cancel, a
        callee ending after its caller was cancelled or killed) is dropped, so the journal
        keeps what the handler saw. Returns whether this call completed it.
        """
        guard = (inv_id, index)
        if guard in self._completing:
            return False
        self._completing.add(guard)
        try:
            a = self._inv.get(inv_id) or self._parked.get(inv_id)
            if a is None and index in self._suspended.get(inv_id, ()):
                a = await self._load(inv_id)  # it wakes up anyway: read its journal now
            if a is not None:
                journal = await self._journal_of(a)
                if index >= len(journal) or journal[index].completed:
                    return False
                journal[index] = replace(
                    journal[index], result=result, failure=failure, completed=True
                )
                a.order.append(index)
            else:  # a suspended invocation not waiting on it, or an ended one
                found = await self.store.read(queries.entry_status, inv_id, index)
                if found is None or found[0] or Status(found[1]) in lc.TERMINAL:
                    return False
            ops = [CompleteEntry(inv_id, index, result, failure, self._now()), *(extra or [])]
            await self.store.write(ops)
        finally:
            self._completing.discard(guard)
        self._deliver(inv_id, index, result, failure)
        return True

    def _deliver(
        self, inv_id: str, index: int, result: str | None, failure: Failure | None
    ) -> None:
        a = self._inv.get(inv_id)
        if a is not None:
            if a.journal is not None and index < len(a.journal) and not a.journal[index].completed:
                a.journal[index] = replace(
                    a.journal[index], result=result, failure=failure, completed=True
                )
                a.order.append(index)
            if a.row.status == Status.RUNNING.value and a.link is not None:
                a.link.send(Completion(inv_id, a.epoch, index, result, failure))
            elif a.row.status == Status.SUSPENDED.value and index in json.loads(
                a.row.waiting_on or "[]"
            ):
                self._spawn(self._wake(inv_id))  # loaded, not yet woken
            return
        if inv_id in self._loading:
            self._loading[inv_id].append((index, result, failure))
            return
        waiting = self._suspended.get(inv_id)
        if waiting is not None and index in waiting:
            self._spawn(self._wake(inv_id))

    async def _load(self, inv_id: str) -> _Active | None:
        """Bring a suspended invocation back into memory (row and journal)."""
        a = self._inv.get(inv_id)
        if a is not None:
            return a
        if inv_id in self._loading:
            while inv_id in self._loading:
                await asyncio.sleep(0.001)
            return self._inv.get(inv_id)
        if inv_id not in self._suspended:
            return None
        a = self._parked.pop(inv_id, None)
        if a is not None:
            del self._suspended[inv_id]
            self._inv[inv_id] = a
            return a
        self._loading[inv_id] = []
        try:
            pending = self._suspending.get(inv_id)
            if pending is not None:
                await asyncio.shield(pending)
            found = await self._read_batched(inv_id)
            if found is None:
                return None
            row, journal, order = found
            for index, result, failure in self._loading[inv_id]:
                if index < len(journal) and not journal[index].completed:
                    journal[index] = replace(
                        journal[index], result=result, failure=failure, completed=True
                    )
                    order.append(index)
            self._suspended.pop(inv_id, None)
            a = _Active(row, journal, order=order)
            self._inv[inv_id] = a
            return a
        finally:
            self._loading.pop(inv_id, None)

    def _read_batched(self, inv_id: str) -> asyncio.Future:
        """Row, journal and completion order of a suspended invocation; the reads asked
        for in one loop turn share two queries (a restart wakes hundreds at once)."""
        fut = self._load_batch.get(inv_id)
        if fut is None:
            fut = self._load_batch[inv_id] = asyncio.get_running_loop().create_future()
            if len(self._load_batch) == 1:
                asyncio.get_running_loop().call_soon(self._flush_loads)
        return fut

    def _flush_loads(self) -> None:
        batch, self._load_batch = self._load_batch, {}
        ids = list(batch)
        for i in range(0, len(ids), 500):
            self._spawn(self._run_loads({k: batch[k] for k in ids[i : i + 500]}))

    async def _run_loads(self, batch: dict[str, asyncio.Future]) -> None:
        try:
            found = await self.store.read(queries.invocations_with_journals, list(batch))
        except Exception as e:
            for fut in batch.values():
                if not fut.done():
                    fut.set_exception(e)
            return
        for inv_id, fut in batch.items():
            if not fut.done():
                fut.set_result(found.get(inv_id))

    async def _wake(self, inv_id: str) -> None:
        a = await self._load(inv_id)
        if a is None or a.row.status != Status.SUSPENDED.value:
            return
        self._transition(a, lc.Woken())
        await self._dispatch(a)

    # ------------------------------------------------------------------ timers
    def _add_timer(self, at: float, kind: str, inv_id: str, index: int) -> None:
        heapq.heappush(self._timers, (at, next(self._timer_seq), kind, inv_id, index))
        if self._timers[0][3] == inv_id and self._timers[0][1] is not None:
            self._timer_wake.set()  # the new timer is the earliest: re-arm the loop

    def next_timer_at(self) -> float | None:
        """When the earliest timer (sleep, delayed start, retry) is due, if any."""
        return self._timers[0][0] if self._timers else None

    def poke_timers(self) -> None:
        """Re-check timers now (after a virtual clock moved)."""
        self._timer_wake.set()

    async def _timer_loop(self) -> None:
        while True:
            now = self.clock.now()
            while self._timers and self._timers[0][0] <= now:
                _at, _seq, kind, inv_id, index = heapq.heappop(self._timers)
                self._fire(kind, inv_id, index)
            self._timer_wake.clear()
            timeout = None
            if self._timers:
                timeout = max(self._timers[0][0] - self.clock.now(), 0)
                if not isinstance(self.clock, SystemClock):
                    timeout = min(timeout, 0.05)
                elif timeout:
                    # wake just after the due time, not a hair before it (the wall clock
                    # and the loop's clock differ in their last digits): a second short
                    # wait would cost another millisecond of epoll's resolution
                    timeout += 0.0002
            try:
                await asyncio.wait_for(self._timer_wake.wait(), timeout)
            except TimeoutError:
                pass

    def _fire(self, kind: str, inv_id: str, index: int) -> None:
        if kind == "sleep":
            if not self._complete_timer_now(inv_id, index):
                self._spawn(
                    self._complete_entry(
                        inv_id,
                        index,
                        "null",
                        None,
                        [DeleteTimer(inv_id, index)],
                    )
                )
        elif kind == "retry":
            a = self._inv.get(inv_id)
            if a is not None and a.row.status == Status.BACKING_OFF.value:
                if (
                    a.row.next_retry_at is not None
                    and from_dt(a.row.next_retry_at) > self.clock.now() + 0.001
                ):
                    return  # rescheduled meanwhile
                self._transition(a, lc.RetryDue())
                self._dispatch_soon(a)
        elif kind == "start":
            a = self._inv.get(inv_id)
            if a is not None and a.row.status == Status.SCHEDULED.value:
                k = self._object_key(a.row)
                busy = bool(k and k in self._key_owner)
                self._transition(a, lc.DelayElapsed(key_busy=busy))
                if k:
                    if busy:
                        self._key_queue.setdefault(k, deque()).append(inv_id)
                    else:
                        self._key_owner[k] = inv_id
                self.store.write_nowait([PutInvocation(a.row)])
                if a.row.status == Status.READY.value:
                    self._dispatch_soon(a)

    # ------------------------------------------------------------------ awakeables, promises, attach
    async def resolve_awakeable(
        self, awakeable_id: str, result: str | None, failure: Failure | None
    ) -> str:
        """Complete an awakeable; returns the invocation id that waits on it."""
        if (
            not awakeable_id.startswith("awk_")
            or len(awakeable_id) < 10
            or not all(c.isalnum() or c in "-_" for c in awakeable_id)
        ):
            raise BadRequest(
                f"malformed awakeable id {awakeable_id!r}: ids look like awk_ followed "
                "by URL-safe characters"
            )
        known = self._awakeables.get(awakeable_id)
        a = self._inv.get(known[0]) or self._parked.get(known[0]) if known else None
        if known and a is not None and a.journal is not None:  # in memory: no read
            inv_id, index = known
            completed, status = a.journal[index].completed, a.row.status
        else:
            await self.store.write([])  # an awakeable created just now is committed first
            found = await self.store.read(queries.awakeable, awakeable_id)
            if found is None:
                raise NotFound(f"unknown awakeable {awakeable_id!r}")
            inv_id, index, completed, status = found
        if completed:
            raise Conflict(f"awakeable {awakeable_id} was already completed")
        if status is not None and Status(status) in lc.TERMINAL:
            raise Conflict(
                f"awakeable {awakeable_id} belongs to invocation {inv_id}, which is {status}: "
                "nothing waits on it any more"
            )
        ok = await self._complete_entry(inv_id, index, result, failure)
        if not ok:
            raise Conflict(f"awakeable {awakeable_id} was already completed")
        return inv_id

    async def _awakeable_from_entry(self, e: JournalEntry) -> None:
        p = json.loads(e.payload or "{}")
        f = p.get("failure")
        try:
            await self.resolve_awakeable(
                p.get("id", ""), p.get("result"), Failure(f["code"], f["message"]) if f else None
            )
        except Exception as err:
            log.warning("ctx.resolve/reject_awakeable: %s", err)

    async def _promise_entry(self, row: InvocationRow, e: JournalEntry) -> None:
        service, key, name = row.service, row.key or "", e.name or ""
        found = await self.store.read(queries.promise, service, key, name)
        if e.kind is EntryKind.PEEK_PROMISE:
            if found is None:
                await self._complete_entry(row.id, e.index, None, None)
            else:
                await self._complete_entry(row.id, e.index, found[0], found[1])
        elif e.kind is EntryKind.GET_PROMISE:
            if found is not None:
                await self._complete_entry(row.id, e.index, found[0], found[1])
        elif e.kind is EntryKind.COMPLETE_PROMISE:
            await self.complete_promise(service, key, name, e.payload or "{}", (row.id, e.index))

    async def complete_promise(
        self, service: str, key: str, name: str, payload: str, entry: tuple[str, int] | None = None
    ) -> None:
        """Resolve or reject a workflow promise (``payload``: {"result"} or {"failure"})."""
        p = json.loads(payload)
        f = p.get("failure")
        failure = Failure(f["code"], f["message"]) if f else None
        result = p.get("result")
        # Claim the promise before reading the store, so two concurrent completions of
        # one promise cannot both find it open; the claim lasts until the write commits.
        pk = (service, key, name)
        claimed = pk not in self._promises_completing
        if claimed:
            self._promises_completing.add(pk)
        try:
            found = await self.store.read(queries.promise, service, key, name) if claimed else True
            if found is not None:
                if entry:
                    await self._complete_entry(
                        *entry, None, Failure(409, f"promise {name!r} was already completed")
                    )
                    return
                raise Conflict(f"promise {name!r} of {service}/{key} was already completed")
            await self.store.write([PutPromise(service, key, name, result, failure, self._now())])
        finally:
            if claimed:
                self._promises_completing.discard(pk)
        if entry:
            await self._complete_entry(*entry, "null", None)
        for inv_id, idx in await self.store.read(queries.promise_waiters, service, key, name):
            await self._complete_entry(inv_id, idx, result, failure)
        # waiters still only in memory (entry appended, not yet committed)
        for a in list(self._inv.values()):
            if a.row.service == service and a.row.key == key and a.journal:
                for ent in a.journal:
                    if ent.kind is EntryKind.GET_PROMISE and ent.name == name and not ent.completed:
                        await self._complete_entry(a.row.id, ent.index, result, failure)

    async def _attach_entry(self, inv_id: str, index: int, target: str) -> None:
        outcome = await self._outcome_if_done(target)
        if outcome is None:
            if target in self._inv or target in self._suspended:
                self._attachers.setdefault(target, []).append((inv_id, index))
                return
            await self._complete_entry(
                inv_id, index, None, Failure(404, f"unknown invocation {target}")
            )
            return
        await self._complete_entry(inv_id, index, outcome.output, outcome.failure)

    # ------------------------------------------------------------------ outputs
    async def _outcome_if_done(self, inv_id: str) -> Outcome | None:
        if inv_id in self._inv or inv_id in self._suspended or inv_id in self._loading:
            return None
        row = await self.store.read(queries.invocation, inv_id)
        if row is None or row.status not in (s.value for s in lc.TERMINAL):
            return None
        f = (
            Failure(row.failure_code, row.failure_message or "")
            if row.failure_code is not None
            else None
        )
        return Outcome(row.id, row.status, row.output, f)

    def _waiter(self, inv_id: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(inv_id, []).append(fut)
        return fut

    def drop_waiter(self, inv_id: str, fut: asyncio.Future) -> None:
        """Forget a waiter of :meth:`outcome_or_waiter` whose client went away."""
        waiting = self._waiters.get(inv_id)
        if waiting is not None and fut in waiting:
            waiting.remove(fut)
            if not waiting:
                del self._waiters[inv_id]

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
        if not is_invocation_id(inv_id):
            raise BadRequest(
                f"malformed invocation id {inv_id!r}: ids look like inv_ + 26 characters"
            )
        if inv_id in self._inv or inv_id in self._suspended or inv_id in self._loading:
            return self._waiter(inv_id) if wait else None
        row = await self.store.read(queries.invocation, inv_id)
        if row is None:
            await self.store.write([])
            row = await self.store.read(queries.invocation, inv_id)
            if row is None:
                raise NotFound(f"unknown invocation {inv_id}")
        if row.status not in (s.value for s in lc.TERMINAL):
            # between states (e.g. being loaded): wait in memory
            return self._waiter(inv_id) if wait else None
        f = (
            Failure(row.failure_code, row.failure_message or "")
            if row.failure_code is not None
            else None
        )
        return Outcome(row.id, row.status, row.output, f)

    # ------------------------------------------------------------------ actions from people
    async def _require(self, inv_id: str) -> _Active:
        if not is_invocation_id(inv_id):
            raise BadRequest(f"malformed invocation id {inv_id!r}")
        a = self._inv.get(inv_id) or await self._load(inv_id)
        if a is None:
            row = await self.store.read(queries.invocation, inv_id)
            if row is None:
                raise NotFound(f"unknown invocation {inv_id}")
            raise Conflict(f"invocation {inv_id} is {row.status}; nothing to do")
        return a

    def _run_actions(self, a: _Active, actions: list[lc.Action]) -> None:
        for action in actions:
            if isinstance(action, lc.Dispatch):
                self._dispatch_soon(a)

    async def cancel(self, inv_id: str) -> str:
        """Cancel: the handler sees a CancelledError at its next await (it may compensate)."""
        a = await self._require(inv_id)
        actions = self._transition(a, lc.CancelRequested())
        if a.row.status == Status.CANCELLED.value:
            self._remove_from_queues(a)
            await self.store.write([PutInvocation(a.row)])
            self._finish(a, actions)
            return a.row.status
        await self.store.write([PutInvocation(a.row)])
        if any(isinstance(x, lc.DeliverCancel) for x in actions):
            await self._deliver_cancel(a)
        return a.row.status

    async def _deliver_cancel(self, a: _Active) -> None:
        """Fail the awaits that can last (timers, awakeables, calls, promises, attaches)
        with a cancellation, in one commit, and cancel the calls it waits on. When it
        awaits none of them now, the next one it starts fails instead."""
        inv_id = a.row.id
        while a.held is not None:  # an idempotent call being resolved: let its entry land
            await asyncio.sleep(0.001)
        journal = await self._journal_of(a)
        pending = [
            e
            for e in journal
            if not e.completed
            and e.kind in _CANCELLABLE
            and (inv_id, e.index) not in self._completing
        ]
        if not pending:
            a.cancel_pending = True
            return
        now = self._now()
        ops: list[Op] = []
        for e in pending:
            self._completing.add((inv_id, e.index))
            journal[e.index] = replace(e, failure=_CANCELLED, completed=True)
            a.order.append(e.index)
            ops.append(CompleteEntry(inv_id, e.index, None, _CANCELLED, now))
            if e.kind is EntryKind.SLEEP:
                ops.append(DeleteTimer(inv_id, e.index))
        try:
            await self.store.write(ops)
        finally:
            for e in pending:
                self._completing.discard((inv_id, e.index))
        for e in pending:
            self._deliver(inv_id, e.index, None, _CANCELLED)
            if e.kind is EntryKind.CALL:
                child = json.loads(e.payload or "{}").get("invocation_id")
                if child:
                    self._spawn(self._quiet(self.cancel(child)))

    async def kill(self, inv_id: str) -> str:
        """Stop at once, without compensation; kills the calls it waits on."""
        a = await self._require(inv_id)
        journal = await self._journal_of(a)
        running_on = a.link if a.row.status == Status.RUNNING.value else None
        actions = self._transition(a, lc.Kill())
        self._remove_from_queues(a)
        ops: list[Op] = [PutInvocation(a.row)]
        for e in journal:
            if e.kind is EntryKind.SLEEP and not e.completed:
                ops.append(DeleteTimer(a.row.id, e.index))
        await self.store.write(ops)
        for e in journal:
            if e.kind is EntryKind.CALL and not e.completed:
                child = json.loads(e.payload or "{}").get("invocation_id")
                if child:
                    self._spawn(self._quiet(self.kill(child)))
        self._finish(a, actions)
        if running_on is not None:
            self.on_running_killed(running_on)
        return a.row.status

    def _remove_from_queues(self, a: _Active) -> None:
        k = self._object_key(a.row)
        if k and k in self._key_queue:
            try:
                self._key_queue[k].remove(a.row.id)
            except ValueError:
                pass

    async def pause(self, inv_id: str) -> str:
        a = await self._require(inv_id)
        was_running = a.row.status == Status.RUNNING.value
        self._transition(a, lc.Pause())
        if was_running and a.link is not None:
            a.link.send(Abort(a.row.id, a.epoch))
            a.link = None
        await self.store.write([PutInvocation(a.row)])
        return a.row.status

    async def resume(self, inv_id: str) -> str:
        a = await self._require(inv_id)
        actions = self._transition(a, lc.Resume())
        await self.store.write([PutInvocation(a.row)])
        self._run_actions(a, actions)
        return a.row.status

    def retry_now(self, predicate: Callable[[InvocationRow], bool] | None = None) -> list[str]:
        """Retry backing-off and paused invocations at once (after a reload)."""
        done = []
        for a in list(self._inv.values()):
            if a.row.status in (Status.BACKING_OFF.value, Status.PAUSED.value) and (
                predicate is None or predicate(a.row)
            ):
                actions = self._transition(a, lc.Resume())
                self.store.write_nowait([PutInvocation(a.row)])
                self._run_actions(a, actions)
                done.append(a.row.id)
        return done

    async def purge(self, inv_id: str) -> None:
        if not is_invocation_id(inv_id):
            raise BadRequest(f"malformed invocation id {inv_id!r}")
        if inv_id in self._inv or inv_id in self._suspended:
            raise Conflict(f"invocation {inv_id} is not finished; kill or cancel it before purging")
        row = await self.store.read(queries.invocation, inv_id)
        if row is None:
            raise NotFound(f"unknown invocation {inv_id}")
        await self.store.write([PurgeInvocation(inv_id)])

    async def workflow_invocation(self, workflow: str, wf_id: str) -> str:
        """The invocation id of a workflow's main run."""
        scope = f"workflow:{workflow}/{wf_id}"
        inv_id = await self._idempotent(scope, "run")
        if inv_id is None:
            raise NotFound(f"workflow {workflow} with id {wf_id!r} has not run")
        return inv_id

    async def sweep_workflows(self) -> list[tuple[str, str]]:
        """Forget finished workflows older than their main handler's ``workflow_retention``
        (output, journal, state, history, promises); returns the (workflow, id) pairs."""
        now = self.clock.now()
        gone: list[tuple[str, str]] = []
        for info in list(self.services.values()):
            main = next((h for h in info.handlers if h.kind == "workflow"), None)
            retention = getattr(main, "workflow_retention_s", None) if main else None
            if info.kind != "workflow" or main is None or not retention:
                continue
            before = to_dt(now - retention)
            keys = await self.store.read(queries.finished_workflows, info.name, main.name, before)
            if keys:
                await self.store.write([PurgeWorkflow(info.name, k) for k in keys])
                gone.extend((info.name, k) for k in keys)
        return gone

    async def _retention_loop(self) -> None:
        while True:
            retentions = [
                h.workflow_retention_s
                for info in self.services.values()
                for h in info.handlers
                if h.kind == "workflow" and getattr(h, "workflow_retention_s", None)
            ]
            period = min([60.0, *(max(r / 4, 0.2) for r in retentions)])
            await asyncio.sleep(period)
            if retentions:
                try:
                    await self.sweep_workflows()
                except Exception:  # a failed sweep is retried next period
                    log.exception("workflow retention sweep failed")

    # ------------------------------------------------------------------ introspection
    async def row(self, inv_id: str) -> InvocationRow | None:
        """The freshest row of an invocation: from memory when active, else the store."""
        a = self._inv.get(inv_id)
        if a is not None:
            return a.row
        await self.store.write([])
        return await self.store.read(queries.invocation, inv_id)

    def queue_position(self, inv_id: str) -> int | None:
        """1 for the next invocation to run on its key, 2 behind it...; None unless pending."""
        a = self._inv.get(inv_id)
        k = self._object_key(a.row) if a is not None else None
        if a is None or k is None or a.row.status != Status.PENDING.value:
            return None
        position = 0
        for other in self._key_queue.get(k, ()):
            o = self._inv.get(other)
            if o is not None and o.row.status == Status.PENDING.value:
                position += 1
            if other == inv_id:
                return position
        return None

    def waiting_clients(self) -> int:
        """How many callers wait for an invocation's outcome (attach, or a call)."""
        return sum(len(w) for w in self._waiters.values())

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {"suspended": len(self._suspended)}
        for a in self._inv.values():
            out[a.row.status] = out.get(a.row.status, 0) + 1
        return out


def _noop() -> None:
    pass
