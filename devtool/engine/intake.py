"""New invocations: from a request (``submit``), and from a restart at entry N; and the
idempotency records that name an invocation by a key."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

from durable.ids import idempotent_invocation_id, new_invocation_id
from durable.messages import JournalEntry

from ..errors import BadRequest, NotFound
from ..lifecycle import Status
from ..store import Store, queries
from ..store.ops import AppendEntry, InvocationRow, Op, PutIdempotency, PutInvocation
from .model import Active, input_entry, new_row

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["Idempotency", "submit", "restart_row", "adopt"]


class Idempotency:
    """The invocation an idempotency key names: records being written are held in
    memory until DuckDB has them, so a second request in the meantime finds them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._held: dict[tuple[str, str], str] = {}
        self._forgotten = 0

    def hold(self, scope: str, key: str, inv_id: str) -> None:
        self._held[(scope, key)] = inv_id

    async def lookup(self, scope: str, key: str) -> str | None:
        """The invocation the key names, if any (being written or in the store)."""
        while True:
            found = self._held.get((scope, key))
            if found is not None:
                return found
            forgotten = self._forgotten
            found = await self.store.read(queries.idempotent_invocation, scope, key)
            if found is not None or forgotten == self._forgotten:
                return found or self._held.get((scope, key))
            # a record left memory for DuckDB while the read ran, perhaps after its snapshot

    def forget(self, scope: str, key: str) -> None:
        """Drop a record from memory once DuckDB holds it (after its write is queued)."""

        def forget() -> None:
            self._held.pop((scope, key), None)
            self._forgotten += 1

        self.store.after_apply(forget)


async def submit(
    engine: Engine,
    service: str,
    handler: str,
    key: str | None,
    input_json: str,
    headers: dict[str, str] | None,
    idempotency_key: str | None,
    delay_s: float,
    durable_ack: bool,
) -> tuple[str, bool]:
    """See :meth:`Engine.submit <durable.devtool.engine.Engine.submit>`."""
    info = engine.services.get(service)
    if info is None:
        if engine.service_unavailable:
            raise NotFound(
                f"service {service!r} is not available: the app failed to load "
                f"({engine.service_unavailable.splitlines()[0]})"
            )
        known = ", ".join(sorted(engine.services)) or "none"
        raise NotFound(f"unknown service {service!r} (known services: {known})")
    hinfo = info.handler(handler)
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
    idem = engine.idempotency
    scope = f"{service}/{key or ''}/{handler}"
    if info.kind == "workflow" and hinfo.kind == "workflow":
        # the main handler runs once per id; shared handlers run whether or not it did
        # (as on Restate: one may resolve a promise before the run starts)
        scope, idempotency_key = f"workflow:{service}/{key}", "run"
    if idempotency_key:
        existing = await idem.lookup(scope, idempotency_key)
        if existing is not None:
            return existing, True
    inv_id = (
        idempotent_invocation_id(scope, idempotency_key) if idempotency_key else new_invocation_id()
    )
    if idempotency_key:
        idem.hold(scope, idempotency_key, inv_id)
    now = engine._now()
    row = new_row(
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
    first = input_entry(input_json)
    ops: list[Op] = [PutInvocation(row, new=True), AppendEntry(inv_id, first, now)]
    if idempotency_key:
        ops.append(PutIdempotency(scope, idempotency_key, inv_id, now))
    a = Active(row, [first])
    engine.residency.inv[inv_id] = a
    engine.on_event("created", {"id": inv_id, "row": row})
    engine._enqueue(a, delay_s, dispatch=False)
    ops[0] = PutInvocation(a.row, new=True)  # as enqueued: ready, pending or scheduled
    fut = engine.store.write(ops)
    if a.row.status == Status.READY.value:
        engine._dispatch_now(a)
    if durable_ack:
        await fut
    if idempotency_key:
        idem.forget(scope, idempotency_key)
    return inv_id, False


def restart_row(engine: Engine, original: InvocationRow, from_index: int) -> InvocationRow:
    """The row of a new invocation that restarts ``original`` from entry ``from_index``."""
    return replace(
        new_row(
            new_invocation_id(),
            original.service_kind,
            original.handler_kind,
            original.service,
            original.handler,
            original.key,
            original.input or "null",
            json.loads(original.headers or "{}"),
            None,
            engine._now(),
            restarted_from=original.id,
        ),
        journal_length=from_index,
    )


async def adopt(engine: Engine, row: InvocationRow, journal: list[JournalEntry]) -> InvocationRow:
    """Queue an invocation built elsewhere with a journal to replay; commit it."""
    a = Active(row, list(journal))
    engine.residency.inv[row.id] = a
    engine.on_event("created", {"id": row.id, "row": row})
    engine._enqueue(a, 0.0)
    now = engine._now()
    await engine.store.write(
        [PutInvocation(a.row, new=True), *(AppendEntry(row.id, e, now) for e in journal)]
    )
    return a.row
