"""A pulled copy through the admin API of the in-process runtime: `POST
/api/invocations/import` (same-origin rule, bad bodies, a second import), the origin in
`GET /api/invocations/{id}` and on the dashboard's page (escaped), replay, and restart,
which seeds the cluster's state only into a key with none. The real cluster is in
tests/cluster/test_pull_replay.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import durable.testing
import httpx
import pytest
from durable import ObjectContext, VirtualObject, Workflow, WorkflowContext
from durable.devtool.admin import create_admin
from durable.devtool.pulled import save_copy
from durable.devtool.store import queries

from tests.unit.test_pulled import copy_of

pytestmark = pytest.mark.timeout(60)

ADMIN = "http://127.0.0.1:9070"
counter = VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    current = await ctx.get("total") or 0
    doubled = await ctx.run("double", lambda: n * 2)
    total = current + doubled
    ctx.set("total", total)
    return total


signup = Workflow("Signup")


@signup.main(workflow_retention=timedelta(seconds=1))
async def run(ctx: WorkflowContext, n: int) -> int:
    return n


async def wait_done(client: httpx.AsyncClient, inv_id: str) -> dict:
    for _ in range(500):
        body = (await client.get(f"/api/invocations/{inv_id}")).json()
        if body["status"] in ("completed", "failed", "killed", "cancelled"):
            return body
        await asyncio.sleep(0.01)
    raise AssertionError(body)


async def test_import_show_replay_and_restart():
    async with durable.testing.Runtime([counter]) as rt:
        app = create_admin(rt.engine, {"admin_url": ADMIN})
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=ADMIN
        ) as client:
            # tests/unit/test_pulled.py's copy is a journal of this handler
            c = replace(copy_of(), cluster="http://<b>restate</b>:9070")
            body = {"copy": c.to_json()}
            r = await client.post(
                "/api/invocations/import", json=body, headers={"Origin": "http://evil.example"}
            )
            assert r.status_code == 403
            r = await client.post("/api/invocations/import", json={"copy": {"status": "x"}})
            assert r.status_code == 400 and "not a pulled copy" in r.json()["message"]
            r = await client.post("/api/invocations/import", json=body)
            assert r.status_code == 200, r.text
            inv = r.json()["id"]
            assert inv == c.id
            r = await client.post("/api/invocations/import", json=body)
            assert r.status_code == 409 and "use --force" in r.json()["message"]

            shown = (await client.get(f"/api/invocations/{inv}")).json()
            assert shown["origin"]["cluster"] == "http://<b>restate</b>:9070"
            assert shown["status"] == "completed" and shown["actions"] == ["purge"]
            page = (await client.get(f"/invocations/{inv}")).text
            assert "Pulled from" in page and c.remote_id in page
            assert "&lt;b&gt;restate&lt;/b&gt;" in page and "<b>restate</b>" not in page

            r = await client.post(f"/api/invocations/{inv}/replay", json={})
            assert r.json()["outcome"] == "match", r.text

            # from entry 1: get_state runs here, on the cluster's state (6)
            r = await client.post(f"/api/invocations/{inv}/restart", json={"from": 1})
            assert r.status_code == 200, r.text
            assert "no local state: it starts from the cluster's" in r.json()["state"]
            done = await wait_done(client, r.json()["id"])
            assert done["output_value"] == 8  # 6 + 1 doubled
            # the key has local state now: kept; from entry 2 the recorded get_state (0)
            r = await client.post(f"/api/invocations/{inv}/restart", json={"from": 2})
            assert "has local state, kept" in r.json()["state"]
            done = await wait_done(client, r.json()["id"])
            assert done["output_value"] == 2 and done["restarted_from"] == inv
            state = (await client.get("/api/state/Counter/ann")).json()
            assert state["state"] == {"total": 2}
            copy_now = (await client.get(f"/api/invocations/{inv}")).json()
            assert copy_now["journal"] == shown["journal"]  # the copy is unchanged


async def test_a_pulled_workflow_copy_is_not_swept_by_the_local_retention():
    """The retention sweep forgets finished local runs (and their key's state); a pulled
    copy, however old, is neither forgotten nor makes its key's state go."""
    async with durable.testing.Runtime([signup]) as rt:
        c = replace(copy_of(), service="Signup", handler="run", key="w1", service_kind="workflow")
        c = replace(c, handler_kind="workflow")
        await save_copy(rt.engine.store, c)
        assert await rt.engine.sweep_workflows() == []
        assert await rt.engine.store.read(queries.invocation, c.id) is not None
