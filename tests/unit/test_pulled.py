"""A pulled copy (devtool/pulled.py) in a real DuckDB store: written, read back, marked
with its origin, refused a second time unless forced, purged with its origin."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from durable.devtool.admin import views
from durable.devtool.errors import BadRequest, Conflict
from durable.devtool.pulled import PulledCopy, PulledEntry, local_id, save_copy
from durable.devtool.store import Store, queries
from durable.devtool.store.ops import PurgeInvocation
from durable.ids import is_invocation_id
from durable.messages import EntryKind, JournalEntry

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2026, 12, 7, 6, 49, 12, 771000)
REMOTE = "inv_1jnVs6uItESb6glVvgoRNZa4mJtMaEleE1"


def copy_of(remote_id: str = REMOTE, created: datetime = T0) -> PulledCopy:
    ms = timedelta(milliseconds=1)
    entries = (
        PulledEntry(JournalEntry(0, EntryKind.INPUT, None, "1", None, None, True), created),
        PulledEntry(
            JournalEntry(1, EntryKind.GET_STATE, "total", None, None, None, True), created + ms
        ),
        PulledEntry(
            JournalEntry(2, EntryKind.RUN, "double", None, "2", None, True),
            created + 2 * ms,
            created + 5 * ms,
        ),
        PulledEntry(
            JournalEntry(3, EntryKind.SET_STATE, "total", "2", None, None, True), created + 6 * ms
        ),
        PulledEntry(
            JournalEntry(4, EntryKind.OUTPUT, None, None, "2", None, True), created + 7 * ms
        ),
    )
    return PulledCopy(
        cluster="http://127.0.0.1:9070",
        remote_id=remote_id,
        remote_status="completed",
        status="completed",
        service="Counter",
        handler="add",
        key="ann",
        service_kind="object",
        handler_kind="exclusive",
        headers={"x-test": "1"},
        idempotency_key=None,
        output="2",
        failure=None,
        last_error=None,
        created_at=created,
        modified_at=created + 7 * ms,
        completed_at=created + 7 * ms,
        entries=entries,
        state={"total": "6"},
        pulled_at=T0 + timedelta(hours=1),
    )


def test_the_local_id_is_durables_shape_stable_and_sorts_by_creation():
    a = local_id(REMOTE, T0)
    assert is_invocation_id(a)
    assert a == local_id(REMOTE, T0)
    assert local_id("inv_1eVo5PdoISlm6jjBIT15NnlJnbFO7Di1XC", T0) != a
    assert local_id(REMOTE, T0 + timedelta(milliseconds=1)) > a


def test_json_round_trip_and_refusals():
    c = copy_of()
    assert PulledCopy.from_json(json.loads(json.dumps(c.to_json()))) == c
    bad = {**c.to_json(), "status": "running"}
    with pytest.raises(BadRequest, match="status must be one of"):
        PulledCopy.from_json(bad)
    with pytest.raises(BadRequest, match="missing field 'remote_id'"):
        PulledCopy.from_json({k: v for k, v in c.to_json().items() if k != "remote_id"})
    gap = {**c.to_json(), "entries": c.to_json()["entries"][1:]}
    with pytest.raises(BadRequest, match="numbered 0, 1, 2"):
        PulledCopy.from_json(gap)
    with pytest.raises(BadRequest, match="JSON object"):
        PulledCopy.from_json([1])


def test_saved_copy_reads_back_with_its_origin_and_no_local_state(tmp_path: Path):
    c = copy_of()

    async def go() -> None:
        store = Store.open(str(tmp_path / "s.duckdb"))
        try:
            done = await save_copy(store, c)
            assert done["id"] == c.id and not done["replaced"]
            assert done["state_keys"] == ["total"]
            row = await store.read(queries.invocation, c.id)
            assert row is not None and row.status == "completed" and row.output == "2"
            assert row.input == "1" and json.loads(row.headers or "{}") == {"x-test": "1"}
            journal = await store.read(queries.journal, c.id)
            assert [e.kind for e in journal] == [p.entry.kind for p in c.entries]
            timed = await store.read(queries.journal_timed, c.id)
            assert timed[2][1:] == (c.entries[2].created_at, c.entries[2].completed_at)
            # the cluster's state is kept apart: the local key has none
            assert await store.read(queries.state, "Counter", "ann") == {}
            shown = await store.read(views.show_invocation, None, c.id, True)
            assert shown["origin"] == {
                "cluster": "http://127.0.0.1:9070",
                "remote_id": REMOTE,
                "remote_status": "completed",
                "pulled_at": "2026-12-07T07:49:12.771000Z",
                "state": {"total": 6},
            }
            with pytest.raises(Conflict, match="already pulled .* use --force"):
                await save_copy(store, c)
            again = await save_copy(store, copy_of(), force=True)
            assert again["replaced"] and again["id"] == c.id
            assert len(await store.read(queries.journal, c.id)) == 5
            await store.write([PurgeInvocation(c.id)])
            assert await store.read(queries.origin, c.id) is None
            assert await store.read(queries.invocation, c.id) is None
        finally:
            store.close()

    asyncio.run(go())
