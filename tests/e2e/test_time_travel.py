"""Replay, restart from entry N and state as of an entry, against a real `durable dev`.

Every ``ctx.run`` body appends a line to a side-effect file, so the tests can tell
exactly which bodies ran (and that replay runs none).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from durable.devtool.cli import app
from typer.testing import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

V1 = """
import os
from durable import Service, VirtualObject, Context, ObjectContext

def note(what):
    with open(os.environ["EFFECTS_FILE"], "a") as f:
        f.write(what + "\\n")
    return what

steps = Service("Steps")

@steps.handler()
async def three(ctx: Context, tag: str) -> list:
    a = await ctx.run("a", note, f"a {tag}")
    b = await ctx.run("b", note, f"b {tag}")
    c = await ctx.run("c", note, f"c {tag}")
    return [a, b, c]

waits = VirtualObject("Waits")

@waits.handler()
async def hold(ctx: ObjectContext, tag: str) -> str:
    await ctx.run("a", note, f"a {tag}")
    aw, promise = ctx.awakeable()
    ctx.set("awk", aw)
    return await promise

acc = VirtualObject("Acc")

@acc.handler()
async def step(ctx: ObjectContext, n: int) -> dict:
    seen = {"total": await ctx.get("total"), "extra": await ctx.get("extra")}
    ctx.set("total", (seen["total"] or 0) + n)
    if n % 2:
        ctx.set("extra", n)
    else:
        ctx.clear("extra")
    seen["total after"] = await ctx.get("total")
    return seen
"""

# The edit: the two first steps of Steps/three swap places.
V2 = V1.replace(
    '    a = await ctx.run("a", note, f"a {tag}")\n    b = await ctx.run("b", note, f"b {tag}")\n',
    '    b = await ctx.run("b", note, f"b {tag}")\n    a = await ctx.run("a", note, f"a {tag}")\n',
)
assert V2 != V1

runner = CliRunner()


def durable(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def wait_status(srv, inv: str, status: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{srv.admin_url}/api/invocations/{inv}", timeout=10).json()
        if body.get("status") == status or time.monotonic() > deadline:
            assert body.get("status") == status, body
            return body
        time.sleep(0.02)


def send(srv, path: str, body) -> str:
    return httpx.post(srv.url + path + "/send", json=body, timeout=30).json()["invocationId"]


@pytest.fixture
def effects(tmp_path: Path) -> Path:
    return tmp_path / "effects.txt"


def start(dev_server, app_path: Path, effects: Path, inline: bool):
    extra = ["--suspend-after", "0.1", "--no-reload"] + (["--inline"] if inline else [])
    return dev_server(app_path, extra=extra, env={"EFFECTS_FILE": str(effects)})


@pytest.mark.parametrize("inline", [False, True], ids=["worker", "inline"])
def test_replay_matches_unchanged_code_and_finds_a_reordering(
    write_app, dev_server, effects, inline
):
    path = write_app(V1)
    srv = start(dev_server, path, effects, inline)
    done = [send(srv, "/Steps/three", f"t{i}") for i in range(3)]
    held = send(srv, "/Waits/w1/hold", "h")
    for inv in done:
        wait_status(srv, inv, "completed")
    wait_status(srv, held, "suspended")
    before = effects.read_text()
    assert before.count("\n") == 10
    stored = rows(srv)

    r = durable("invocations", "replay", "--all", "--url", srv.admin_url)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "replayed 4: 4 match" in r.stdout
    r = durable("invocations", "replay", done[0], "--url", srv.admin_url, "--json")
    one = json.loads(r.stdout)
    assert one["outcome"] == "match" and one["stopped"] == "the handler returned"
    assert one["entries_checked"] == 3
    r = durable("invocations", "replay", held, "--url", srv.admin_url)
    assert r.exit_code == 0 and "waits on entry 2" in r.stdout
    assert effects.read_text() == before  # no ctx.run body ran

    srv.stop()
    path.write_text(V2)
    srv.start()
    r = durable("invocations", "replay", "--all", "--url", srv.admin_url)
    assert r.exit_code == 1, r.stdout + r.stderr
    line = V2.splitlines().index('    b = await ctx.run("b", note, f"b {tag}")') + 1
    for inv in done:
        assert (
            f"{inv} Steps/three: DIVERGES at entry 1: recorded run('a'), the code asks for "
            f"run('b') at {path}:{line}"
        ) in r.stdout
    assert "replayed 4: 3 divergence, 1 match" in r.stdout
    r = durable(
        "invocations", "replay", "--all", "--service", "Steps", "--json", "--url", srv.admin_url
    )
    report = json.loads(r.stdout)
    assert report["counts"] == {"divergence": 3}
    first = report["results"][0]
    assert (first["index"], first["recorded"], first["requested"]) == (1, "run('a')", "run('b')")
    assert first["location"] == f"{path}:{line}"
    assert effects.read_text() == before  # still nothing ran
    # replay wrote nothing either
    assert rows(srv) == stored


def rows(srv) -> list:
    sql = (
        "select (select count(*) from journal), (select count(*) from invocations), "
        "(select max(modified_at) from invocations)"
    )
    return httpx.post(f"{srv.admin_url}/api/sql", json={"sql": sql}, timeout=10).json()["rows"]


def test_restart_from_entry_n(write_app, dev_server, effects):
    srv = start(dev_server, write_app(V1), effects, inline=False)
    u = ("--url", srv.admin_url)
    old = send(srv, "/Steps/three", "x")
    wait_status(srv, old, "completed")
    assert effects.read_text() == "a x\nb x\nc x\n"

    r = durable("invocations", "restart", old, "--from", "2", *u, "--json")
    assert r.exit_code == 0, r.stderr
    new = json.loads(r.stdout)
    assert new["restarted_from"] == old and new["id"] != old and new["from"] == 2
    body = wait_status(srv, new["id"], "completed")
    assert body["restarted_from"] == old
    assert body["output_value"] == ["a x", "b x", "c x"]
    assert body["journal"][1]["result"] == "a x"  # kept from the original
    assert effects.read_text() == "a x\nb x\nc x\nb x\nc x\n"  # a not again; b, c once more
    out = durable("invocations", "ls", "--service", "Steps", *u).stdout
    assert f"restarted from {old}" in out
    assert durable("invocations", "show", new["id"], *u).stdout.count(old) == 1

    for args, text in [
        (("--from", "99"), "entry 99 is past the end of the journal"),
        (("--from", "5"), "entry 5 is past the end"),
        (("--from", "0"), "entry 0 is the input"),
    ]:
        r = durable("invocations", "restart", old, *args, *u)
        assert r.exit_code == 1 and text in " ".join(r.stderr.split()), r.stderr
    r = durable("invocations", "restart", "inv_00000000000000000000000000", "--from", "1", *u)
    assert r.exit_code == 1 and "unknown invocation" in r.stderr

    held = send(srv, "/Waits/w1/hold", "h")
    wait_status(srv, held, "suspended")
    r = durable("invocations", "restart", held, "--from", "3", *u)
    assert r.exit_code == 1
    assert "entry 2 (awakeable) is not completed" in " ".join(r.stderr.split())
    r = durable("invocations", "restart", held, "--from", "2", *u)
    assert r.exit_code == 1 and "kill it first" in " ".join(r.stderr.split()).lower()
    r = durable("invocations", "restart", held, "--from", "2", "--kill", *u)
    assert r.exit_code == 0 and "(the original was killed)" in r.stdout, r.stderr
    again = r.stdout.split(" as ")[1].split()[0]
    wait_status(srv, held, "killed")
    fresh = wait_status(srv, again, "suspended")
    assert fresh["restarted_from"] == held
    assert fresh["waits_on"].startswith("awakeable awk_")
    assert effects.read_text().count("a h") == 1  # entry 1 kept, not re-run


def test_state_as_of_an_entry_is_what_the_handler_observed(write_app, dev_server, effects):
    srv = start(dev_server, write_app(V1), effects, inline=False)
    u = ("--url", srv.admin_url)
    invs = []
    for n in (1, 2, 3, 4):
        if n == 3:  # a change by hand between two invocations
            assert durable("state", "set", "Acc", "k", "extra", "100", *u).exit_code == 0
        inv = send(srv, "/Acc/k/step", n)
        wait_status(srv, inv, "completed")
        invs.append(inv)
    outputs = []
    for inv in invs:
        body = wait_status(srv, inv, "completed")
        outputs.append(body["output_value"])
        for e in body["journal"]:
            r = durable(
                "state", "get", "Acc", "k", "--invocation", inv, "--entry", e["index"], "--json", *u
            )
            as_of = json.loads(r.stdout)["state"]
            assert e["state"] == as_of, (inv, e)  # `show` and `state get --entry` agree
            if e["kind"] == "get_state":  # what the handler read is the state as of there
                assert e["result"] == as_of.get(e["name"]), (inv, e, as_of)
            elif e["kind"] == "set_state":
                assert as_of[e["name"]] == e["payload"]
            elif e["kind"] == "clear_state":
                assert e["name"] not in as_of
    assert outputs == [
        {"total": None, "extra": None, "total after": 1},
        {"total": 1, "extra": 1, "total after": 3},
        {"total": 3, "extra": 100, "total after": 6},  # saw the value set by hand
        {"total": 6, "extra": 3, "total after": 10},
    ]
    now = json.loads(durable("state", "get", "Acc", "k", "--json", *u).stdout)["state"]
    last = wait_status(srv, invs[-1], "completed")["journal"][-1]["state"]
    assert now == last == {"total": 10}
