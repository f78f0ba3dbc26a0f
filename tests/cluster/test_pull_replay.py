"""`durable pull` against a real Restate 1.7: invocations run on the cluster (served by the
real restate-sdk under hypercorn) are copied into a local store, with no runtime and
through a `durable dev` holding the store; `invocations show` names their origin; replay
checks them against the same file as local code (it matches), then against an edit (it
diverges at the right entry, with file and line); `restart --from N` runs them here.
Bad, unknown and unreachable pulls exit 1 and leave the store as it was."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from durable.devtool.cli import app
from typer.testing import CliRunner

from tests.conftest import DevServer, free_port
from tests.restate_server import AppProcess, RestateServer, hypercorn_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

HERE = Path(__file__).parent
runner = CliRunner()


def durable(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args])


@dataclass
class Cluster:
    server: RestateServer
    deployment: AppProcess
    ids: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.admin_url


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A real restate-server serving pull_app.py, with one invocation of each kind."""
    server = RestateServer(tmp_path_factory.mktemp("restate"))
    folder = tmp_path_factory.mktemp("cluster-app")
    shutil.copy(HERE / "pull_app.py", folder / "app.py")
    deployment = hypercorn_app(folder)
    try:
        server.start()
        deployment.start()
        server.register(deployment.url)
        ingress = httpx.Client(base_url=server.ingress_url, timeout=30)
        ids: dict[str, str] = {}
        r = ingress.post("/Greeter/greet", json="ann")
        assert (r.status_code, r.json()) == (200, "hello ANN 2"), r.text
        ids["greet"] = r.headers["x-restate-id"]
        rows = server.query(f"SELECT id FROM sys_invocation WHERE invoked_by_id = '{ids['greet']}'")
        ids["add1"] = rows[0]["id"]
        r = ingress.post("/Counter/ann/add", json=1)  # 2 on the key + 1 doubled
        assert (r.status_code, r.json()) == (200, 4), r.text
        ids["add2"] = r.headers["x-restate-id"]
        r = ingress.post("/Counter/bob/refuse", json="no")
        assert r.status_code == 400, r.text
        ids["refuse"] = r.headers["x-restate-id"]
        r = httpx.patch(
            f"{server.admin_url}/services/Forgetful", json={"journal_retention": "0s"}, timeout=10
        )
        assert r.status_code == 200, r.text
        r = ingress.post("/Forgetful/hello", json="x")
        assert r.status_code == 200, r.text
        ids["forgotten"] = r.headers["x-restate-id"]
        r = ingress.post("/Counter/amy/approve/send", json="amy")
        ids["approve"] = r.json()["invocationId"]
        awakeable = _published(server, ids["approve"])
        r = ingress.post(f"/restate/awakeables/{awakeable}/resolve", json="yes")
        assert r.status_code in (200, 202), r.text
        server.wait_status(ids["approve"], "completed")
        r = ingress.post("/Counter/zed/slow/send")
        assert r.status_code == 202, r.text
        ids["slow"] = r.json()["invocationId"]
        ingress.close()
        _wait_sleeping(server, ids["slow"])
        yield Cluster(server, deployment, ids)
    finally:
        deployment.stop()
        server.stop()


def _published(server: RestateServer, inv_id: str) -> str:
    """The awakeable id the invocation's "publish" run recorded."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for row in server.query(
            f"SELECT entry_json FROM sys_journal WHERE id = '{inv_id}' "
            "AND entry_type = 'Notification: Run'"
        ):
            done = json.loads(row["entry_json"])["Notification"]["Completion"]["Run"]
            return json.loads(bytes(done["result"]["Success"]))
        time.sleep(0.1)
    raise AssertionError(f"{inv_id} published no awakeable id")


def _wait_sleeping(server: RestateServer, inv_id: str) -> None:
    """Until the invocation has journaled its sleep (Restate keeps it running for a while
    before it suspends)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = server.query(
            f"SELECT journal_commands_size FROM sys_invocation WHERE id = '{inv_id}'"
        )
        if rows and rows[0]["journal_commands_size"] == 3:
            return
        time.sleep(0.1)
    raise AssertionError(f"{inv_id} did not reach its sleep: {rows}")


def pull(cluster: Cluster, remote_id: str, store: Path, *more: object) -> dict[str, Any]:
    r = durable("pull", remote_id, "--restate", cluster.url, "--store", store, "--json", *more)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def cluster_rows(cluster: Cluster) -> list[tuple[str, str, int]]:
    rows = cluster.server.query("SELECT id, status, journal_size FROM sys_invocation ORDER BY id")
    return [(r["id"], r["status"], r["journal_size"]) for r in rows]


def store_rows(store: Path) -> tuple[Any, ...]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return tuple(
            con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("invocations", "journal", "origins", "state")
        )
    finally:
        con.close()


# ---------------------------------------------------------------------------- no runtime
def test_pull_into_a_store_no_runtime_holds(cluster: Cluster, tmp_path: Path):
    store = tmp_path / ".durable" / "durable.duckdb"
    before = cluster_rows(cluster)
    ids = cluster.ids

    r = durable("pull", ids["greet"], "--restate", cluster.url, "--store", store)
    assert r.exit_code == 0, r.output
    assert f"pulled {ids['greet']} from {cluster.url} as inv_" in r.stdout
    assert "Greeter/greet, completed there, 4 entries" in r.stdout
    greet = json.loads(
        durable("invocations", "show", _local(r.stdout), "--store", store, "--json").stdout
    )
    assert greet["status"] == "completed" and greet["output_value"] == "hello ANN 2"
    assert [e["kind"] for e in greet["journal"]] == ["input", "call", "run", "output"]
    assert greet["journal"][1]["result"] == 2 and greet["journal"][2]["name"] == "shout"
    assert greet["request"]["body"] == "ann"
    assert greet["origin"]["remote_id"] == ids["greet"]
    assert greet["origin"]["cluster"] == cluster.url
    assert greet["origin"]["remote_status"] == "completed"

    add2 = pull(cluster, ids["add2"], store)
    assert add2["state_keys"] == ["total"] and add2["status"] == "completed"
    shown = durable("invocations", "show", add2["id"], "--store", store)
    assert shown.exit_code == 0, shown.output
    assert f"pulled from:      Restate cluster {cluster.url}, id {ids['add2']}" in shown.stdout
    assert "(completed there)" in shown.stdout
    assert 'cluster state:    {"total": 4}' in shown.stdout
    data = json.loads(durable("invocations", "show", add2["id"], "--store", store, "--json").stdout)
    assert [e["kind"] for e in data["journal"]] == [
        "input", "get_state", "run", "sleep", "set_state", "output",
    ]  # fmt: skip
    assert data["journal"][1]["result"] == 2 and data["journal"][2]["result"] == 2
    assert data["journal"][2]["completed_at"] >= data["journal"][2]["created_at"]
    assert data["origin"]["state"] == {"total": 4}
    # the cluster's state is the copy's, not the local key's
    local_state = durable("state", "get", "Counter", "ann", "--store", store, "--json")
    assert json.loads(local_state.stdout)["state"] == {}, local_state.output

    r = runner.invoke(  # the cluster named by the environment
        app,
        ["pull", ids["refuse"], "--store", str(store), "--json"],
        env={"DURABLE_RESTATE_URL": cluster.url},
    )
    assert r.exit_code == 0, r.output
    refused = json.loads(r.stdout)
    assert refused["status"] == "failed"
    data = json.loads(
        durable("invocations", "show", refused["id"], "--store", store, "--json").stdout
    )
    assert data["failure"] == {"code": 400, "message": "refused: no"}
    assert data["origin"]["remote_status"] == "completed with a failure"

    slow = pull(cluster, ids["slow"], store)
    assert slow["status"] == "killed" and slow["remote_status"] in ("running", "suspended")
    data = json.loads(durable("invocations", "show", slow["id"], "--store", store, "--json").stdout)
    assert " on the cluster when pulled: it does not run here" in data["last_error"]
    assert data["journal"][-1]["kind"] == "sleep" and not data["journal"][-1]["completed"]

    again = durable("pull", ids["greet"], "--restate", cluster.url, "--store", store)
    assert again.exit_code == 1
    assert f"{ids['greet']} was already pulled from {cluster.url}" in again.output
    assert "use --force to replace that copy" in again.output
    forced = durable("pull", ids["greet"], "--restate", cluster.url, "--store", store, "--force")
    assert forced.exit_code == 0, forced.output
    assert "(replacing the earlier copy)" in forced.stdout
    assert store_rows(store)[0] == 4  # four copies, the forced one once

    assert cluster_rows(cluster) == before  # pulling wrote nothing to the cluster


def _local(text: str) -> str:
    return text.split(" as ", 1)[1].split(":", 1)[0]


def test_bad_unknown_and_unreachable_pulls_exit_1_and_write_nothing(
    cluster: Cluster, tmp_path: Path
):
    store = tmp_path / ".durable" / "durable.duckdb"
    r = durable("pull", "nope", "--restate", cluster.url, "--store", store)
    assert r.exit_code == 1
    assert "'nope' is not a Restate invocation id" in r.output
    assert not store.exists()
    r = durable("pull", cluster.ids["greet"], "--store", store)
    assert r.exit_code == 1 and "give the cluster's admin API: --restate" in r.output

    pull(cluster, cluster.ids["add1"], store)
    kept = store_rows(store)
    unknown = cluster.ids["greet"][:-4] + (
        "zzzz" if not cluster.ids["greet"].endswith("zzzz") else "yyyy"
    )
    r = durable("pull", unknown, "--restate", cluster.url, "--store", store)
    assert r.exit_code == 1
    assert f"the cluster at {cluster.url} has no invocation {unknown}" in r.output
    nowhere = f"http://127.0.0.1:{free_port()}"
    r = durable("pull", cluster.ids["add2"], "--restate", nowhere, "--store", store)
    assert r.exit_code == 1
    assert f"no Restate admin API answers at {nowhere}" in r.output
    r = durable(
        "pull", cluster.ids["add2"], "--restate", cluster.server.ingress_url, "--store", store
    )
    assert r.exit_code == 1 and "is not a Restate admin API" in r.output
    r = durable("pull", cluster.ids["forgotten"], "--restate", cluster.url, "--store", store)
    assert r.exit_code == 1
    assert f"the journal of {cluster.ids['forgotten']} is no longer on the cluster" in r.output
    assert store_rows(store) == kept


# ---------------------------------------------------------------------------- with a runtime
def wait_done(dev: DevServer, inv_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{dev.admin_url}/api/invocations/{inv_id}", timeout=10).json()
        if body.get("status") in ("completed", "failed", "killed", "cancelled"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"{inv_id} did not finish: {body.get('status')}\n{dev.log()[-3000:]}")


def test_pull_through_a_runtime_replay_match_diverge_and_restart(cluster: Cluster, tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    source = (HERE / "pull_app.py").read_text()
    (project / "app.py").write_text(source)
    store = project / ".durable" / "durable.duckdb"
    pids = tmp_path / "pids.txt"
    dev = DevServer(project / "app.py", store, project, env={"PULL_PID_FILE": str(pids)})
    dev.start(timeout=60)
    try:
        r = durable("pull", cluster.ids["add2"], "--restate", cluster.url, "--store", store)
        assert r.exit_code == 0, r.output
        assert f"writing through the runtime at {dev.admin_url}" in r.stderr
        add2 = _local(r.stdout)
        greet = pull(cluster, cluster.ids["greet"], store)["id"]
        refused = pull(cluster, cluster.ids["refuse"], store)["id"]
        shown = durable("invocations", "show", add2, "--url", dev.admin_url)
        assert f"id {cluster.ids['add2']} (completed there)" in shown.stdout, shown.output

        approve = pull(cluster, cluster.ids["approve"], store)["id"]
        shown = json.loads(
            durable("invocations", "show", approve, "--url", dev.admin_url, "--json").stdout
        )
        assert [e["kind"] for e in shown["journal"]] == [
            "input", "awakeable", "run", "set_state", "output",
        ]  # fmt: skip
        assert shown["journal"][1]["result"] == "yes"
        for inv in (add2, greet, refused, approve):
            r = durable("invocations", "replay", inv, "--url", dev.admin_url)
            assert r.exit_code == 0, r.output
            assert f"{inv} " in r.stdout and ": matches (entries 1-" in r.stdout, r.stdout
        assert (
            "the handler returned)"
            in durable("invocations", "replay", add2, "--url", dev.admin_url).stdout
        )
        # a copy of an invocation still sleeping on the cluster replays up to its sleep
        slow = pull(cluster, cluster.ids["slow"], store)["id"]
        r = durable("invocations", "replay", slow, "--url", dev.admin_url)
        assert r.exit_code == 0, r.output
        assert "matches (entries 1-2 as recorded; the handler waits on entry 2," in r.stdout
        worker_pids = set(pids.read_text().split())
        assert worker_pids and str(dev.proc.pid) not in worker_pids  # the worker ran it

        # restart from 1: get_state runs here, on the cluster's state (the key had none)
        r = durable("invocations", "restart", add2, "--from", 1, "--url", dev.admin_url)
        assert r.exit_code == 0, r.output
        assert "had no local state: it starts from the cluster's (1 entries)" in r.stdout
        first = r.stdout.split(" as ", 1)[1].split()[0]
        assert wait_done(dev, first)["output_value"] == 6  # 4 (the cluster's) + 1 doubled
        # restart from 3: the recorded get_state (2) and run (2) are kept
        r = durable("invocations", "restart", add2, "--from", 3, "--url", dev.admin_url)
        assert r.exit_code == 0 and "has local state, kept" in r.stdout, r.output
        second = r.stdout.split(" as ", 1)[1].split()[0]
        done = wait_done(dev, second)
        assert (done["output_value"], done["restarted_from"]) == (4, add2)
        copy = httpx.get(f"{dev.admin_url}/api/invocations/{add2}", timeout=10).json()
        assert copy["status"] == "completed" and len(copy["journal"]) == 6  # unchanged

        # an edit that renames the ctx.run: replay reports entry 2, with file and line
        edited = source.replace(
            'doubled = await ctx.run("double", lambda: n * 2)',
            'doubled = await ctx.run("twice", lambda: n * 3)',
        )
        assert edited != source
        (project / "app.py").write_text(edited)
        line = next(i for i, t in enumerate(edited.splitlines(), 1) if '"twice"' in t)
        deadline = time.monotonic() + 60
        while True:
            r = durable("invocations", "replay", add2, "--url", dev.admin_url, "--json")
            result = json.loads(r.stdout)
            if result["outcome"] == "divergence" or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert result["outcome"] == "divergence", result
        assert result["index"] == 2
        assert result["recorded"] == "run('double')" and result["requested"] == "run('twice')"
        assert result["location"].endswith(f"app.py:{line}"), result
        r = durable("invocations", "replay", add2, "--url", dev.admin_url)
        assert r.exit_code == 1
        assert (
            "DIVERGES at entry 2: recorded run('double'), the code asks for run('twice') at "
            in r.stdout
        )
        assert f"app.py:{line}" in r.stdout
        # the greeting never reaches the renamed run: it still matches
        assert durable("invocations", "replay", greet, "--url", dev.admin_url).exit_code == 0

        # restart from 2 with today's code: the recorded get_state (2) + 1 tripled
        r = durable("invocations", "restart", add2, "--from", 2, "--url", dev.admin_url)
        assert r.exit_code == 0, r.output
        third = r.stdout.split(" as ", 1)[1].split()[0]
        done = wait_done(dev, third)
        assert done["output_value"] == 5, done
        assert [e["name"] for e in done["journal"] if e["kind"] == "run"] == ["twice"]
    finally:
        dev.stop()


def test_replay_under_inline_runs_the_handler_in_the_runtime(cluster: Cluster, tmp_path: Path):
    """With --inline the replay runs in the runtime's own process (where a debugger's
    breakpoints are): the handler body records the PID of the process running it."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(HERE / "pull_app.py", project / "app.py")
    store = project / ".durable" / "durable.duckdb"
    pids = tmp_path / "pids.txt"
    dev = DevServer(
        project / "app.py",
        store,
        project,
        ["--inline", "--no-reload"],
        {"PULL_PID_FILE": str(pids)},
    )
    dev.start(timeout=60)
    try:
        add2 = pull(cluster, cluster.ids["add2"], store)["id"]
        assert not pids.exists()
        r = durable("invocations", "replay", add2, "--url", dev.admin_url)
        assert r.exit_code == 0 and "matches" in r.stdout, r.output
        assert pids.read_text().split() == [str(dev.proc.pid)]
    finally:
        dev.stop()
