"""Restate's journals mapped to durable entries, on a real restate-server.

Every command the test app's handlers make (run, sleep, call, one-way and delayed
call, cancel, awakeables made, resolved and rejected, state get/set/clear/clear-all
and keys, promise get/peek/complete, output success and failure) is journaled by
Restate, then mapped: each durable entry's kind, name, payload and outcome is checked.
"""

from __future__ import annotations

import json

import pytest
from durable.devtool.cluster import journal as rj
from durable.messages import EntryKind as K
from durable.messages import Failure

from tests.cluster.conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def entries(cluster: Cluster, inv_id: str) -> list:
    return rj.journal_entries(cluster.journal(inv_id), inv_id)


def kinds(es: list) -> list[tuple[K, str | None]]:
    return [(e.kind, e.name) for e in es]


def test_a_service_handler_with_every_service_command(cluster: Cluster) -> None:
    r = cluster.call("Kitchen/everything", 5)
    assert r.status_code == 200, r.text
    inv = cluster.id_of("Kitchen/everything")
    es = entries(cluster, inv)
    assert [e.index for e in es] == list(range(len(es)))
    later = json.loads(es[5].payload)["invocation_id"]
    resolved, rejected = json.loads(es[7].payload)["id"], json.loads(es[9].payload)["id"]
    assert kinds(es) == [
        (K.INPUT, None),
        (K.RUN, "double"),
        (K.SLEEP, None),
        (K.CALL, "Helper/echo"),
        (K.ONE_WAY_CALL, "Helper/echo"),
        (K.ONE_WAY_CALL, "Helper/later"),
        (K.CANCEL_INVOCATION, later),
        (K.AWAKEABLE, None),
        (K.COMPLETE_AWAKEABLE, resolved),
        (K.AWAKEABLE, None),
        (K.COMPLETE_AWAKEABLE, rejected),
        (K.RUN, "timestamp"),  # restate-sdk's ctx.time() is a run
        (K.OUTPUT, None),
    ]
    assert all(e.completed for e in es)
    assert es[0].payload == "5"
    assert es[1].result == "10"
    sleep = json.loads(es[2].payload)
    assert sleep["wake_at"] > 0 and 0 <= sleep["duration_ms"] < 5000
    call = json.loads(es[3].payload)
    assert (call["service"], call["handler"], json.loads(call["input"])) == (
        "Helper",
        "echo",
        {"called": 5},
    )
    assert json.loads(es[3].result) == {"called": 5}
    child = cluster.row(call["invocation_id"])  # the callee Restate started
    assert child["invoked_by_id"] == inv
    send = json.loads(es[4].payload)
    assert send["delay_ms"] == 0 and json.loads(es[4].result) == send["invocation_id"]
    # one hour from the command's append time (which Restate stamps a few ms apart)
    assert 3_590_000 <= json.loads(es[5].payload)["delay_ms"] <= 3_610_000
    assert resolved.startswith("sign_1") and resolved != rejected
    assert resolved == rj.awakeable_id(inv, 17) and rejected == rj.awakeable_id(inv, 18)
    assert json.loads(es[7].result) == {"ok": 5}
    assert json.loads(json.loads(es[8].payload)["result"]) == {"ok": 5}
    assert es[9].failure == Failure(409, "no thanks")
    assert json.loads(es[10].payload)["failure"] == {"code": 409, "message": "no thanks"}
    assert float(es[11].result) > 1e9
    out = json.loads(es[12].result)
    assert out == {
        "doubled": 10,
        "called": {"called": 5},
        "resolved": {"ok": 5},
        "rejected": "no thanks",
    }
    # the cancelled delayed call: Restate drops a scheduled invocation it cancels
    gone = cluster.wait_for(
        later,
        lambda row: (
            row.get("completion_failure") in (None, "[409] cancelled")
            and row.get("status") != "scheduled"
        ),
        10,
    )
    assert gone.get("status") in (None, "completed")


def test_a_terminal_failure_is_the_output_entry_s_failure(cluster: Cluster) -> None:
    assert cluster.call("Kitchen/refuse", "nope").status_code == 418
    es = entries(cluster, cluster.id_of("Kitchen/refuse"))
    assert kinds(es) == [(K.INPUT, None), (K.OUTPUT, None)]
    assert es[1].failure == Failure(418, "refused: nope") and es[1].result is None


def test_object_state_commands(cluster: Cluster) -> None:
    assert cluster.call("Pantry/shelf/stock", "flour").json() == {
        "count": 1,
        "keys": ["count", "last", "scratch"],
    }
    es = entries(cluster, cluster.id_of("Pantry/stock"))
    assert kinds(es) == [
        (K.INPUT, None),
        (K.GET_STATE, "count"),
        (K.SET_STATE, "count"),
        (K.SET_STATE, "last"),
        (K.SET_STATE, "scratch"),
        (K.CLEAR_STATE, "scratch"),
        (K.STATE_KEYS, None),
        (K.OUTPUT, None),
    ]
    assert es[1].result is None and es[1].completed  # no value yet
    assert es[2].payload == "1" and es[3].payload == '"flour"'
    assert json.loads(es[6].result) == ["count", "last", "scratch"]
    assert cluster.call("Pantry/shelf/look").json() == "flour"
    look = entries(cluster, cluster.id_of("Pantry/look"))
    assert kinds(look) == [(K.INPUT, None), (K.GET_STATE, "last"), (K.OUTPUT, None)]
    assert look[0].payload is None and look[1].result == '"flour"'
    assert cluster.call("Pantry/shelf/empty").status_code == 200
    empty = entries(cluster, cluster.id_of("Pantry/empty"))
    assert kinds(empty) == [(K.INPUT, None), (K.CLEAR_ALL_STATE, None), (K.OUTPUT, None)]
    assert empty[2].result is None and empty[2].failure is None


def test_workflow_promise_commands(cluster: Cluster) -> None:
    run = cluster.send("Signup/ann/run", "ann@example.com")
    waiting = cluster.wait_for(run, lambda row: row.get("journal_commands_size", 0) >= 3)
    es = entries(cluster, run)
    assert kinds(es)[-1] == (K.GET_PROMISE, "code") and not es[-1].completed
    assert waiting["status"] != "completed"
    assert cluster.call("Signup/ann/peek").status_code == 200
    peek = entries(cluster, cluster.id_of("Signup/peek"))
    assert kinds(peek) == [(K.INPUT, None), (K.PEEK_PROMISE, "code"), (K.OUTPUT, None)]
    assert peek[1].completed and peek[1].result is None  # not resolved yet
    assert cluster.call("Signup/ann/confirm", "1234").status_code == 200
    confirm = entries(cluster, cluster.id_of("Signup/confirm"))
    assert kinds(confirm) == [(K.INPUT, None), (K.COMPLETE_PROMISE, "code"), (K.OUTPUT, None)]
    assert json.loads(confirm[1].payload) == {"result": '"1234"'}
    cluster.wait_for(run, lambda row: row.get("status") == "completed")
    es = entries(cluster, run)
    assert kinds(es) == [
        (K.INPUT, None),
        (K.SET_STATE, "email"),
        (K.GET_PROMISE, "code"),
        (K.OUTPUT, None),
    ]
    assert es[2].completed and es[2].result == '"1234"'
    assert json.loads(es[3].result) == "ann@example.com confirmed with 1234"


def test_a_pending_awakeable_is_placed_where_the_code_made_it(cluster: Cluster) -> None:
    inv = cluster.send("Kitchen/wait", "w")
    row = cluster.wait_for(inv, lambda row: row.get("journal_commands_size", 0) >= 3)
    views = rj.entry_views(
        cluster.journal(inv), inv, tuple(row.get("suspended_waiting_for_signals") or (17,))
    )
    assert [(v["kind"], v["name"]) for v in views] == [
        ("input", None),
        ("run", "first"),
        ("awakeable", None),  # before the run that handed its id on
        ("run", "tell"),
    ]
    # while it runs (no suspension yet), the id it handed on names the awakeable too
    assert rj.entry_views(cluster.journal(inv), inv) == views
    awk = views[2]["payload"]["id"]
    assert views[3]["result"] == awk == rj.awakeable_id(inv, 17)
    assert not views[2]["completed"]
    assert views[1]["restate_type"] == "Command: Run" and views[2]["restate_index"] is None
    r = httpx_post(f"{cluster.server.ingress_url}/restate/awakeables/{awk}/resolve", {"v": 1})
    assert r.status_code == 202, r.text
    cluster.wait_for(inv, lambda row: row.get("status") == "completed")
    es = entries(cluster, inv)
    assert kinds(es) == [
        (K.INPUT, None),
        (K.RUN, "first"),
        (K.AWAKEABLE, None),
        (K.RUN, "tell"),
        (K.OUTPUT, None),
    ]
    assert json.loads(es[2].result) == {"v": 1}


def httpx_post(url: str, body: object):
    import httpx

    return httpx.post(url, json=body, timeout=10)


def test_rows_it_cannot_read_are_refused_clearly() -> None:
    with pytest.raises(rj.UnknownEntry, match="no readable entry_json"):
        rj.map_journal([{"index": 0, "entry_type": "Command: Input", "entry_json": "{"}])
    bad = {
        "index": 1,
        "entry_type": "Command: Teleport",
        "entry_json": '{"Command":{"Teleport":{}}}',
    }
    with pytest.raises(rj.UnknownEntry, match="Teleport"):
        rj.map_journal([bad])
    with pytest.raises(ValueError, match="not a Restate invocation id"):
        rj.awakeable_id("inv_short", 17)


def test_completions_in_one_millisecond_keep_restates_order() -> None:
    """Restate's times are in milliseconds: the mapped completion times follow the order
    of the rows that completed them (a replay's combinator picks by that order)."""
    at = "2026-01-01T00:00:00.123Z"

    def row(i: int, body: dict) -> dict:
        return {"index": i, "entry_type": "", "entry_json": json.dumps(body), "appended_at": at}

    def done(cid: int) -> dict:
        result = {"Success": list(b'"x"')}
        return {"Notification": {"Completion": {"Run": {"completion_id": cid, "result": result}}}}

    rows = [
        row(0, {"Command": {"Input": {"headers": [], "payload": []}}}),
        row(1, {"Command": {"Run": {"name": "a", "completion_id": 1}}}),
        row(2, {"Command": {"Run": {"name": "b", "completion_id": 2}}}),
        row(3, done(2)),  # b's result first, in the same millisecond as a's
        row(4, done(1)),
    ]
    mapped = rj.map_journal(rows)
    a, b = mapped[1], mapped[2]
    assert (a.entry.name, b.entry.name) == ("a", "b")
    assert a.completed_at is not None and b.completed_at is not None
    assert b.completed_at < a.completed_at
    assert (a.completed_at - b.completed_at).total_seconds() < 0.001
