"""Unit tests of the admin reads in durable.devtool.store.queries and admin_views, on a
real DuckDB (in memory) filled through the store's own writer."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from durable.devtool.admin.views import Live, list_invocations, show_invocation
from durable.devtool.store import Store, queries
from durable.devtool.store.ops import (
    AppendEntry,
    ClearAllState,
    InvocationRow,
    PutInvocation,
    SetState,
)
from durable.devtool.store.queries import InvocationFilter
from durable.ids import new_invocation_id
from durable.messages import EntryKind, JournalEntry

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2024, 5, 1, 12, 0, 0)


def row(inv_id: str, at: datetime, **kw) -> InvocationRow:
    base = dict(
        id=inv_id,
        service="Acc",
        handler="step",
        key="k",
        service_kind="object",
        handler_kind="exclusive",
        status="completed",
        input="1",
        headers="{}",
        idempotency_key=None,
        output=None,
        failure_code=None,
        failure_message=None,
        attempt=1,
        next_retry_at=None,
        last_error=None,
        last_error_stack=None,
        waiting_on=None,
        parent_id=None,
        parent_entry=None,
        restarted_from=None,
        scheduled_at=None,
        cancel_requested=False,
        journal_length=1,
        created_at=at,
        modified_at=at,
        completed_at=None,
    )
    base.update(kw)
    return InvocationRow(**base)


@pytest.fixture
def store():
    s = Store.open(":memory:")
    yield s
    s.close()


def lst(store: Store, *args, **kw) -> dict:
    return store.read_sync(lambda cur: list_invocations(cur, *args, **kw))


def write(store: Store, ops: list) -> None:
    async def go() -> None:
        await store.write(ops)

    asyncio.run(go())


def entry(inv: str, i: int, kind: EntryKind, at: datetime, name: str | None = None, payload=None):
    return AppendEntry(inv, JournalEntry(i, kind, name, payload, None, None, True), at)


def test_state_as_of_follows_own_entries_others_and_clear_all(store):
    a, b = new_invocation_id(), new_invocation_id()
    s = timedelta(seconds=1)
    write(
        store,
        [
            PutInvocation(row(a, T0), new=True),
            PutInvocation(row(b, T0 + 10 * s), new=True),
            entry(a, 0, EntryKind.INPUT, T0),
            entry(a, 1, EntryKind.SET_STATE, T0 + s, "x", "1"),
            SetState("Acc", "k", "x", "1", a, 1, T0 + s),
            entry(a, 2, EntryKind.SET_STATE, T0 + 2 * s, "y", "2"),
            SetState("Acc", "k", "y", "2", a, 2, T0 + 2 * s),
            entry(a, 3, EntryKind.CLEAR_ALL_STATE, T0 + 3 * s),
            ClearAllState("Acc", "k", a, 3, T0 + 3 * s),
            entry(a, 4, EntryKind.SET_STATE, T0 + 4 * s, "z", "3"),
            SetState("Acc", "k", "z", "3", a, 4, T0 + 4 * s),
            # by hand, between the two invocations
            SetState("Acc", "k", "manual", '"m"', None, None, T0 + 5 * s),
            entry(b, 0, EntryKind.INPUT, T0 + 10 * s),
            entry(b, 1, EntryKind.GET_STATE, T0 + 11 * s, "z"),
            entry(b, 2, EntryKind.CLEAR_STATE, T0 + 12 * s, "z"),
            SetState("Acc", "k", "z", None, b, 2, T0 + 12 * s),
        ],
    )

    def as_of(inv: str, i: int) -> dict:
        return store.read_sync(queries.state_as_of, "Acc", "k", inv, i)

    assert as_of(a, 0) == {}
    assert as_of(a, 1) == {"x": "1"}
    assert as_of(a, 2) == {"x": "1", "y": "2"}
    assert as_of(a, 3) == {}
    assert as_of(a, 4) == {"z": "3"}
    assert as_of(b, 0) == {"z": "3", "manual": '"m"'}
    assert as_of(b, 1) == {"z": "3", "manual": '"m"'}
    assert as_of(b, 2) == {"manual": '"m"'}
    with pytest.raises(LookupError, match="has no journal entry 9"):
        as_of(a, 9)
    # `show` computes the same states in one sweep
    shown = store.read_sync(show_invocation, None, a)
    assert [e["state"] for e in shown["journal"]] == [{}, {"x": 1}, {"x": 1, "y": 2}, {}, {"z": 3}]
    shown = store.read_sync(show_invocation, None, b)
    assert [e["state"] for e in shown["journal"]] == [
        {"manual": "m", "z": 3},
        {"manual": "m", "z": 3},
        {"manual": "m"},
    ]


def test_keyset_pages_filters_and_the_live_overlay(store):
    ids = []
    for i in range(25):
        inv = new_invocation_id()
        ids.append(inv)
        status = "suspended" if i % 5 == 0 else "completed"
        service = "Acc" if i % 2 else "Other"
        write(
            store,
            [
                PutInvocation(
                    row(inv, T0 + timedelta(seconds=i), status=status, service=service), new=True
                )
            ],
        )
    newest = list(reversed(ids))
    f = InvocationFilter()
    got, after = [], None
    while True:
        page = lst(store, None, f, after=after, limit=7)
        got += [i["id"] for i in page["invocations"]]
        after = page["next"]
        if after is None:
            break
    assert got == newest
    page = lst(store, None, f, before=newest[10], limit=3, count=True)
    assert [i["id"] for i in page["invocations"]] == newest[7:10] and page["total"] == 25
    assert page["prev"] == newest[7] and page["next"] == newest[9]

    f = InvocationFilter(statuses=("suspended",))
    assert lst(store, None, f, count=True)["total"] == 5
    # one stored as suspended runs again (live: running), one completed is still in memory
    running = replace(store.read_sync(queries.invocation, ids[5]), status="running")
    live = Live(rows={ids[5]: running})
    page = lst(store, live, f, count=True)
    assert ids[5] not in [i["id"] for i in page["invocations"]] and page["total"] == 4
    page = lst(store, live, InvocationFilter(statuses=("running",)), count=True)
    assert [i["id"] for i in page["invocations"]] == [ids[5]] and page["total"] == 1
    assert page["invocations"][0]["status"] == "running"
    everything = lst(store, live, InvocationFilter(), limit=100)
    by_id = {i["id"]: i["status"] for i in everything["invocations"]}
    assert by_id[ids[5]] == "running" and by_id[ids[0]] == "suspended"
    # filters in SQL and in Python agree
    f = InvocationFilter(service="Acc", since=T0 + timedelta(seconds=10), id_contains=ids[13][:12])
    sql = [i["id"] for i in lst(store, None, f)["invocations"]]
    py = [r for r in ids if f.matches(store.read_sync(queries.invocation, r), "completed")]
    assert sorted(sql) == sorted(py) and sql


def test_waiting_describes_incomplete_entries(store):
    inv = new_invocation_id()
    wake = int((T0 + timedelta(hours=1)).timestamp() * 1000)
    write(
        store,
        [
            PutInvocation(row(inv, T0, status="suspended", waiting_on="[2]"), new=True),
            entry(inv, 0, EntryKind.INPUT, T0),
            AppendEntry(
                inv,
                JournalEntry(1, EntryKind.AWAKEABLE, None, json.dumps({"id": "awk_abc"})),
                T0,
            ),
            AppendEntry(
                inv,
                JournalEntry(2, EntryKind.SLEEP, None, json.dumps({"wake_at": wake})),
                T0,
            ),
        ],
    )
    page = lst(store, None, InvocationFilter())
    (item,) = page["invocations"]
    assert [w["index"] for w in item["waiting"]] == [2]  # what it is suspended on
    assert item["waits_on"].startswith("timer until ")
    shown = store.read_sync(show_invocation, None, inv)
    assert shown["journal"][1]["completed"] is False


def test_text_search_reads_input_output_and_errors_exactly_in_slices(store):
    hour = timedelta(hours=1)
    texts = [
        # quotes and non-ASCII (as the SDK's serde writes them): escaped in the attrs JSON
        dict(input=json.dumps('say "hi" to Zoë', ensure_ascii=False)),
        dict(output=json.dumps({"path": "C:\\temp\\x_1%"})),
        dict(failure_code=500, failure_message="out of Tomatoes"),
        dict(status="backing-off", last_error="KeyError: 'missing'"),
        dict(input=json.dumps("nothing here"), idempotency_key="tomatoes-key"),
    ]
    ids = []
    for n, kw in enumerate(texts):
        inv = new_invocation_id()
        ids.append(inv)
        # days apart: the search reads several slices back from the newest
        write(store, [PutInvocation(row(inv, T0 + n * 24 * hour, **kw), new=True)])

    def found(text: str, **kw) -> list[str]:
        f = InvocationFilter(text=text, **kw)
        got = [i["id"] for i in lst(store, None, f)["invocations"]]
        py = [r for r in ids if f.matches(store.read_sync(queries.invocation, r), "completed")]
        assert sorted(got) == sorted(py), text  # SQL and Python agree
        return got

    assert found('SAY \\"HI\\"') == [ids[0]]  # the input's JSON text is searched
    assert found('"say') == [ids[0]]
    assert found("zoë") == [ids[0]]  # no raw needle: the exact test alone
    assert found('x_1%"}') == [ids[1]]  # LIKE's wildcards are plain text here
    assert found('PATH": "C:') == [ids[1]]
    assert found("x%1") == []
    assert found("tomatoes") == [ids[2]]  # not the idempotency key
    assert found("keyerror: 'MISSING'") == [ids[3]]
    assert found("service_kind") == []  # other attrs are not searched
    assert found(ids[4][-6:]) == [ids[4]]
    assert found("tomatoes", service="Other") == []
    # out of time: it says how far back it read, and stops
    f = InvocationFilter(text="nothing at all")
    page = store.read_sync(lambda cur: queries.search_invocations(cur, f, budget_s=0))
    assert page.rows == [] and page.searched_since is not None
    assert page.searched_since > T0
    full = lst(store, None, f, count=True)
    assert full["invocations"] == [] and "searched_since" not in full
    assert full["total"] == 0 and "total_since" not in full
    assert lst(store, None, InvocationFilter(text="tomato"), limit=0, count=True)["total"] == 1
    n, since = store.read_sync(lambda cur: queries.count_search(cur, f, budget_s=0))
    assert n == 0 and since is not None
