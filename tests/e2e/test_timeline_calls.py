"""Timeline spans, call graph links, call trees and text search, over real HTTP against
a real `durable dev` process (admin API and CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

APP = """
import time
from datetime import timedelta
from durable import Service, Context, TerminalError

tree = Service("Tree")

@tree.handler()
async def root(ctx: Context, n: int) -> str:
    await ctx.run("work", lambda: time.sleep(0.3) or "done")
    await ctx.sleep(timedelta(milliseconds=400))
    got = await ctx.service_call(mid, n)
    ctx.service_send(leaf, "sent")
    ctx.service_send(leaf, "later", send_delay=timedelta(milliseconds=300))
    return got

@tree.handler()
async def mid(ctx: Context, n: int) -> str:
    return await ctx.service_call(leaf, f"from mid {n}")

@tree.handler()
async def leaf(ctx: Context, word: str) -> str:
    return word.upper()

@tree.handler()
async def fail(ctx: Context, word: str) -> str:
    raise TerminalError(f"out of {word}")
"""


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _ms(a: str, b: str) -> float:
    return (_t(b) - _t(a)).total_seconds() * 1000


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "durable.devtool.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _all_done(admin: httpx.Client, n: int) -> list[dict]:
    deadline = time.monotonic() + 20
    while True:
        items = admin.get("/api/invocations", params={"service": "Tree", "limit": 50}).json()
        done = [i for i in items["invocations"] if i["status"] == "completed"]
        if len(done) >= n or time.monotonic() > deadline:
            return items["invocations"]
        time.sleep(0.1)


def test_spans_links_and_the_call_tree(write_app, dev_server, tmp_path):
    server = dev_server(write_app(APP))
    with server.client() as c, httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        assert c.post("/Tree/root", json=7).json() == "FROM MID 7"
        items = _all_done(admin, 5)
        by_handler: dict[str, list[dict]] = {}
        for i in items:
            by_handler.setdefault(i["handler"], []).append(i)
        root_id = by_handler["root"][0]["id"]
        mid_id = by_handler["mid"][0]["id"]
        inv = admin.get(f"/api/invocations/{root_id}").json()
        kinds = {e["kind"]: e for e in inv["journal"]}
        run = kinds["run"]
        # the body's real duration, ending when the runtime recorded it
        assert run["duration_ms"] >= 290
        assert run["ended_at"] == run["created_at"]
        assert 290 <= _ms(run["started_at"], run["ended_at"]) < 5000
        sleep = kinds["sleep"]
        assert sleep["started_at"] == sleep["created_at"]
        assert 390 <= sleep["duration_ms"] < 5000
        assert sleep["planned_end"] is not None
        call = kinds["call"]
        assert call["child_id"] == mid_id
        assert call["ended_at"] == call["completed_at"]
        sends = [e for e in inv["journal"] if e["kind"] == "one_way_call"]
        assert len(sends) == 2 and all(e["child_id"] for e in sends)
        delayed = sends[1]
        assert 299 <= _ms(delayed["started_at"], delayed["ended_at"]) <= 301  # to its start
        assert inv["caller"] is None

        # the child links back to its parent and entry, a call or a send alike
        mid = admin.get(f"/api/invocations/{mid_id}").json()
        assert mid["caller"] == {"id": root_id, "entry": call["index"], "kind": "call"}
        for send in sends:
            child = admin.get(f"/api/invocations/{send['child_id']}").json()
            assert child["caller"] == {"id": root_id, "entry": send["index"], "kind": "send"}
            assert child["parent_id"] is None  # a send does not wait for its child

        # the whole tree, from any of its invocations
        leaf_of_mid = next(e["child_id"] for e in mid["journal"] if e["kind"] == "call")
        tree = admin.get(f"/api/invocations/{leaf_of_mid}/tree").json()
        assert tree["root"] == root_id and tree["focus"] == leaf_of_mid
        assert tree["truncated"] is False and tree["note"] is None
        shape = [(n["depth"], n["handler"], n["via"], n["parent"]) for n in tree["nodes"]]
        assert shape == [
            (0, "root", "root", None),
            (1, "mid", "call", root_id),
            (2, "leaf", "call", mid_id),
            (1, "leaf", "send", root_id),
            (1, "leaf", "send", root_id),
        ]
        assert [n["entry"] for n in tree["nodes"][1:]] == [
            call["index"],
            mid["journal"][-2]["index"],
            sends[0]["index"],
            sends[1]["index"],
        ]
        assert all(n["status"] == "completed" for n in tree["nodes"])
        cut = admin.get(f"/api/invocations/{root_id}/tree", params={"limit": 2}).json()
        assert cut["truncated"] is True and len(cut["nodes"]) == 2
        assert "cut at 2 invocations" in cut["note"]
        missing = admin.get("/api/invocations/inv_00000000000000000000000000/tree")
        assert missing.status_code == 404 and "unknown invocation" in missing.json()["message"]
        bad = admin.get("/api/invocations/nope/tree")
        assert bad.status_code == 400

        # the CLI shows the links both ways
        show = _cli("invocations", "show", root_id, "--url", server.admin_url, cwd=tmp_path)
        assert show.returncode == 0, show.stderr
        assert f"entry {call['index']} calls Tree/mid: {mid_id}" in show.stdout
        assert f"sends to Tree/leaf: {sends[1]['child_id']}" in show.stdout
        show = _cli(
            "invocations", "show", sends[0]["child_id"], "--url", server.admin_url, cwd=tmp_path
        )
        assert f"sent by:          {root_id} entry {sends[0]['index']}" in show.stdout
        tree_out = _cli("invocations", "tree", mid_id, "--url", server.admin_url, cwd=tmp_path)
        assert tree_out.returncode == 0, tree_out.stderr
        lines = tree_out.stdout.splitlines()
        assert lines[0].startswith(root_id) and "Tree/root" in lines[0]
        assert any(mid_id in ln and "call" in ln for ln in lines)


def test_search_by_text_in_input_output_and_error(write_app, dev_server, tmp_path):
    server = dev_server(write_app(APP))
    with server.client() as c, httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        r = c.post("/Tree/fail", json="tomatoes")
        assert r.status_code == 500 and "out of tomatoes" in r.text
        assert c.post("/Tree/leaf", json="Brussels sprouts").json() == "BRUSSELS SPROUTS"
        _all_done(admin, 2)

        def ids(**params: str) -> list[str]:
            got = admin.get("/api/invocations", params=params)
            assert got.status_code == 200, got.text
            return [(i["handler"]) for i in got.json()["invocations"]]

        assert ids(q="OF TOMATO") == ["fail"]  # the error, in any case
        assert ids(q="tomatoes") == ["fail"]  # and the input
        assert ids(q="sprouts") == ["leaf"]  # input and output
        assert ids(q='"BRUSSELS') == ["leaf"]  # the output's JSON text
        assert ids(q="no such text") == []
        assert ids(q="sprouts", handler="fail") == []
        first = admin.get("/api/invocations", params={"handler": "leaf"}).json()
        leaf_id = first["invocations"][0]["id"]
        assert ids(q=leaf_id[-8:]) == ["leaf"]  # ids are searched too
        assert ids(q=leaf_id[:20]) == ["leaf"]
        assert ids(id=leaf_id[-8:]) == ["leaf"]
        assert ids(id="sprouts") == []  # id= reads ids only
        counted = admin.get("/api/invocations", params={"q": "tomato", "count": 1}).json()
        assert counted["total"] == 1
        long = admin.get("/api/invocations", params={"q": "x" * 201})
        assert long.status_code == 400 and "at most 200" in long.json()["message"]

        out = _cli(
            "invocations", "ls", "--search", "Tomatoes", "--url", server.admin_url, cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
        assert "Tree/fail" in out.stdout and "Tree/leaf" not in out.stdout
        none = _cli("invocations", "ls", "--search", "zzz", "--url", server.admin_url, cwd=tmp_path)
        assert "no invocations matching text=zzz" in none.stdout
