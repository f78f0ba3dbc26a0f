"""What a person can do to invocations, state and awakeables through the admin API.

Each action checks the invocation's live status first and answers a refusal with an
:class:`~durable.devtool.errors.RequestError` that says why and what to do instead, then
calls the engine. Replay runs the recorded journal in the worker (see
:mod:`durable.devtool.replay`); restart from entry N builds a new invocation whose
journal is the original's entries before N and hands it to the engine.

Restart does not rewind the state of objects and workflows: the new invocation starts
from the key's current state, and the ``set_state`` entries it keeps are not applied
again.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from durable.ids import is_invocation_id
from durable.messages import EntryKind, Failure, JournalEntry, Start
from durable.payloads import CompletePromisePayload

from .. import lifecycle as lc
from ..clock import to_dt
from ..engine import Engine
from ..errors import BadRequest, Conflict, NotFound, RequestError, Unavailable
from ..replay import DEFAULT_TIMEOUT_S, ReplayRequest, ReplayResult
from ..store import queries
from ..store.ops import InvocationRow, SetState

__all__ = [
    "ACTIONS",
    "live_row",
    "act",
    "bulk",
    "replay",
    "replay_many",
    "restart",
    "set_state",
    "resolve_awakeable",
    "reject_awakeable",
    "complete_promise",
]

ACTIONS = lc.ACTIONS
_BULK_CONCURRENCY = 32
_replay_ids = itertools.count(1)


def _check_id(inv_id: str) -> None:
    if not is_invocation_id(inv_id):
        raise BadRequest(
            f"malformed invocation id {inv_id!r}: ids look like inv_ followed by 26 characters"
        )


async def live_row(engine: Engine, inv_id: str) -> tuple[InvocationRow, str]:
    """The freshest row of an invocation and its live status; NotFound if unknown."""
    _check_id(inv_id)
    live = engine.live_row(inv_id)
    if live is not None:
        return live, live.status
    await engine.barrier()  # what was queued is readable
    row = await engine.store.read(queries.invocation, inv_id)
    if row is None:
        raise NotFound(f"unknown invocation {inv_id}")
    live = engine.live_row(inv_id)
    if live is not None:
        return live, live.status
    return row, engine.live_status(inv_id) or row.status


async def _journal(engine: Engine, inv_id: str) -> list[JournalEntry]:
    journal = engine.live_journal(inv_id)
    if journal is not None:
        return journal
    await engine.barrier()
    return await engine.store.read(queries.journal, inv_id)


# ---------------------------------------------------------------------------- lifecycle
_SETTLE_S = 1.0  # how long a cancel waits for the handler to end before answering

_DONE = {
    "kill": "killed: it stopped at once, without compensation",
    "pause": "paused: it runs again when resumed",
    "resume": "resumed",
}


async def act(engine: Engine, action: str, inv_id: str, settle: bool = True) -> dict[str, Any]:
    """cancel, kill, purge, pause or resume one invocation.

    The answer's ``status`` is the invocation's status after the action and
    ``message`` says what happened in words. A cancel reaches the handler at its next
    await: with ``settle`` it waits up to a second for the invocation to end, so the
    answer is usually ``cancelled``; else it says the cancel is on its way.
    """
    if action not in ACTIONS:
        raise NotFound(f"unknown action {action!r} (actions: {', '.join(ACTIONS)})")
    _row, status = await live_row(engine, inv_id)
    why = lc.refusal(action, status, inv_id)
    if why is not None:
        raise Conflict(why)
    try:
        if action == "purge":
            await engine.purge(inv_id)
            return {"id": inv_id, "action": action, "status": "purged", "message": "purged"}
        new_status = await getattr(engine, action)(inv_id)
    except lc.IllegalTransition as e:
        raise Conflict(str(e)) from None
    if action == "cancel" and new_status not in lc.TERMINAL and settle:
        try:
            await asyncio.wait_for(engine.output(inv_id, True), _SETTLE_S)
        except TimeoutError:
            pass
        new_status = engine.live_status(inv_id) or (await live_row(engine, inv_id))[1]
    if action == "cancel":
        message = (
            "cancelled"
            if new_status == "cancelled"
            else f"it ended {new_status} (its handler handled the cancellation)"
            if new_status in lc.TERMINAL
            else "cancel delivered: the handler gets a CancelledError at its next await and "
            f"ends cancelled (it may compensate first); it is {new_status} now"
        )
    else:
        message = _DONE.get(action, action)
        if action == "resume":
            message = f"resumed: it is {new_status} now"
    return {"id": inv_id, "action": action, "status": new_status, "message": message}


async def bulk(engine: Engine, action: str, ids: list[str]) -> dict[str, Any]:
    """Apply one action to many invocations; failures are listed, not raised."""
    if action not in ACTIONS:
        raise BadRequest(f"unknown action {action!r} (actions: {', '.join(ACTIONS)})")
    sem = asyncio.Semaphore(_BULK_CONCURRENCY)
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []

    async def one(inv_id: str) -> None:
        async with sem:
            try:
                done.append(await act(engine, action, inv_id, settle=False))
            except RequestError as e:
                failed.append({"id": inv_id, "code": e.status, "message": e.message})

    await asyncio.gather(*(one(i) for i in dict.fromkeys(ids)))
    return {"action": action, "done": done, "failed": failed}


# ---------------------------------------------------------------------------- replay
async def replay(engine: Engine, inv_id: str, timeout: float = DEFAULT_TIMEOUT_S) -> dict:
    """Replay one invocation's journal against the current code, in the worker."""
    row, status = await live_row(engine, inv_id)
    journal = await _journal(engine, inv_id)
    result = await _run_replay(engine, row, journal, timeout)
    out = result.to_dict()
    out.update(id=inv_id, service=row.service, handler=row.handler, key=row.key, status=status)
    return out


async def _run_replay(
    engine: Engine, row: InvocationRow, journal: list[JournalEntry], timeout: float
) -> ReplayResult:
    link = engine.link
    if link is None or not hasattr(link, "replay"):
        why = engine.service_unavailable or "no worker is running"
        raise Unavailable(f"cannot replay: {why.splitlines()[0]}")
    order: list[int] = []
    pulled = await engine.store.read(queries.origin, row.id) is not None
    if pulled:  # a combinator made on replay picks what Restate notified first
        journal, order = await engine.store.read(queries.journal_and_order, row.id)
    start = Start(
        row.id,
        row.service,
        row.handler,
        row.key,
        tuple(journal),
        None,
        json.loads(row.headers or "{}"),
        row.attempt,
        0,
        tuple(order),
    )
    return await link.replay(ReplayRequest(next(_replay_ids), start, timeout, pulled))


async def replay_many(engine: Engine, ids: list[str], timeout: float = DEFAULT_TIMEOUT_S) -> dict:
    """Replay several invocations; an unknown id is reported as an error, not raised."""
    sem = asyncio.Semaphore(_BULK_CONCURRENCY)

    async def one(inv_id: str) -> dict:
        async with sem:
            try:
                return await replay(engine, inv_id, timeout)
            except Unavailable:
                raise
            except RequestError as e:
                return {"id": inv_id, "outcome": "error", "message": e.message}

    return {"results": list(await asyncio.gather(*(one(i) for i in dict.fromkeys(ids))))}


# ---------------------------------------------------------------------------- restart
async def restart(
    engine: Engine, inv_id: str, from_index: int, kill_original: bool = False
) -> dict[str, Any]:
    """A new invocation that keeps entries ``0..from_index-1`` and runs today's code
    from there. Object and workflow state is not rewound."""
    row, status = await live_row(engine, inv_id)
    journal = await _journal(engine, inv_id)
    has_output = bool(journal) and journal[-1].kind is EntryKind.OUTPUT
    last = len(journal) - 1 if has_output else len(journal)
    if from_index < 1:
        raise BadRequest("entry 0 is the input: restart from entry 1 or later")
    if from_index > last:
        shape = f"entries 0 to {len(journal) - 1}" + (
            f" (entry {len(journal) - 1} is the output)" if has_output else ""
        )
        raise BadRequest(
            f"entry {from_index} is past the end of the journal of {inv_id}: it has {shape}; "
            f"restart from an entry between 1 and {last}"
        )
    for e in journal[:from_index]:
        if not e.completed:
            what = e.kind.value + (f" {e.name!r}" if e.name else "")
            raise Conflict(
                f"entry {e.index} ({what}) is not completed, so the new invocation could not "
                f"use its result; restart from entry {e.index} or earlier"
            )
    info = engine.services.get(row.service)
    if info is None or info.handler(row.handler) is None:
        raise NotFound(f"handler {row.service}/{row.handler} is not in the app now")
    killed = False
    if status not in lc.TERMINAL:
        if not kill_original:
            raise Conflict(
                f"invocation {inv_id} is {status}: a restart would run beside it (and wait "
                "behind it for an object key). Kill it first, or restart with kill (--kill)"
            )
        await engine.kill(inv_id)
        killed = True
    keep, settled = await _pulled_prefix(engine, row, journal, from_index)
    new = engine.restart_row(row, len(keep))
    state_note = await _seed_pulled_state(engine, row)
    adopted = await engine.adopt(new, keep)
    answer = {
        "id": new.id,
        "restarted_from": inv_id,
        "from": from_index,
        "status": adopted.status,
        "killed_original": killed,
    }
    if state_note:
        answer["state"] = state_note
    if settled:
        answer["journal"] = settled
    return answer


async def _pulled_prefix(
    engine: Engine, row: InvocationRow, journal: list[JournalEntry], from_index: int
) -> tuple[list[JournalEntry], str | None]:
    """The entries a restart from ``from_index`` keeps, and a note on how they were
    settled (None: as stored). A copy pulled from Restate is replayed first, so a guessed
    awakeable place is settled and the combinator entries Restate does not journal are
    made; ``from_index`` counts the stored entries. A ``from_index`` between the place
    the code made an awakeable and its guessed place is refused (Conflict)."""
    if await engine.store.read(queries.origin, row.id) is None:
        return journal[:from_index], None
    r = await _run_replay(engine, row, journal, DEFAULT_TIMEOUT_S)
    if not r.stored:
        raise Unavailable(f"cannot restart a pulled copy without replaying it: {r.message}")
    keep: list[JournalEntry] = []
    for n, (e, was) in enumerate(zip(r.journal, r.stored, strict=True)):
        if was is not None and was >= from_index:
            before = [s for s in r.stored[n:] if s is not None and s < from_index]
            if before:
                raise Conflict(
                    f"the code made the awakeable of entry {was} (Restate records no place "
                    f"for it) before entry {min(before)}: restart from entry {min(before)} "
                    f"or earlier, or from entry {was + 1} or later"
                )
            break
        keep.append(e)
    kept = r.stored[: len(keep)]
    if list(kept) == list(range(len(keep))):
        return keep, None
    made = sum(1 for s in kept if s is None)
    return keep, (
        f"the pulled journal as a replay settled it: {len(keep)} entries kept, {made} "
        "combinator entries made (Restate journals none), guessed awakeables at the place "
        "the code makes them"
    )


async def _seed_pulled_state(engine: Engine, row: InvocationRow) -> str | None:
    """For a copy pulled from a cluster (``durable pull``) of an object or workflow: the
    key's state on the cluster becomes its local state if the key has none here; local
    state is never overwritten. Says which happened (None: not a pulled copy)."""
    origin = await engine.store.read(queries.origin, row.id)
    if origin is None or row.key is None or row.service_kind not in ("object", "workflow"):
        return None
    pulled = json.loads(origin["state"] or "{}")
    where = f"{row.service}/{row.key}"
    if not pulled:
        return f"the key {where} had no state on the cluster; its local state is used"
    local = await engine.store.read(queries.state, row.service, row.key)
    if local:
        return (
            f"the key {where} has local state, kept (the cluster's, when pulled, is in "
            "the copy's origin: durable invocations show)"
        )
    now = to_dt(engine.clock.now())
    await engine.store.write(
        [SetState(row.service, row.key, k, v, None, None, now) for k, v in pulled.items()]
    )
    return (
        f"the key {where} had no local state: it starts from the cluster's ({len(pulled)} entries)"
    )


# ---------------------------------------------------------------------------- state
async def set_state(
    engine: Engine, service: str, key: str, name: str, value_json: str | None
) -> dict[str, Any]:
    """Set (or clear, with ``None``) one state entry of an object or workflow key."""
    info = engine.services.get(service)
    if info is None:
        known = ", ".join(sorted(s for s, i in engine.services.items() if i.kind != "service"))
        raise NotFound(f"unknown service {service!r} (objects and workflows: {known or 'none'})")
    if info.kind == "service":
        raise BadRequest(f"{service} is a service: only objects and workflows have state")
    if not name:
        raise BadRequest("give the name of the state entry")
    if value_json is not None:
        try:
            json.loads(value_json)
        except ValueError as e:
            raise BadRequest(f"the value is not valid JSON: {e}") from None
    now = to_dt(engine.clock.now())
    await engine.store.write([SetState(service, key, name, value_json, None, None, now)])
    return {"service": service, "key": key, "name": name, "cleared": value_json is None}


# ---------------------------------------------------------------------------- awakeables
async def resolve_awakeable(engine: Engine, awakeable_id: str, value_json: str) -> dict:
    inv_id = await engine.resolve_awakeable(awakeable_id, value_json, None)
    return {"id": awakeable_id, "invocation_id": inv_id, "resolved": True}


async def reject_awakeable(engine: Engine, awakeable_id: str, message: str, code: int) -> dict:
    inv_id = await engine.resolve_awakeable(awakeable_id, None, Failure(code, message))
    return {"id": awakeable_id, "invocation_id": inv_id, "rejected": True}


async def complete_promise(
    engine: Engine,
    service: str,
    key: str,
    name: str,
    value_json: str | None = None,
    failure: Failure | None = None,
) -> dict[str, Any]:
    """Resolve (``value_json``) or reject (``failure``) a workflow promise."""
    info = engine.services.get(service)
    if info is None or info.kind != "workflow":
        raise NotFound(f"{service!r} is not a workflow of this app")
    payload = (
        CompletePromisePayload(None, failure) if failure else CompletePromisePayload(value_json)
    )
    await engine.complete_promise(service, key, name, payload.to_json())
    return {"service": service, "key": key, "name": name, "completed": True}
