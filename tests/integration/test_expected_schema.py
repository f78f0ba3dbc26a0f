"""Awakeable and workflow-promise entries record the expected type's JSON schema (the
dashboard prefills its resolve form from it); replay ignores it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import durable.testing
import pytest
from durable import Context, Service, Workflow, WorkflowContext
from durable.devtool.store import queries


@dataclass
class Approval:
    by: str
    ok: bool = True


svc = Service("Approvals")
ids: list[str] = []


@svc.handler()
async def typed(ctx: Context) -> str:
    aw_id, fut = ctx.awakeable(type_hint=Approval)
    await ctx.run("publish", lambda: ids.append(aw_id))
    got = await fut
    return got.by


@svc.handler()
async def untyped(ctx: Context) -> str:
    aw_id, fut = ctx.awakeable()
    await ctx.run("publish", lambda: ids.append(aw_id))
    return str(await fut)


wf = Workflow("Gate")


@wf.main()
async def run(ctx: WorkflowContext) -> int:
    return await ctx.promise("n", type_hint=int).value()


async def _journal(rt: durable.testing.Runtime, inv: str):
    await rt.engine.store.write([])
    return await rt.engine.store.read(queries.journal, inv)


@pytest.mark.timeout(20)
async def test_awakeable_and_promise_entries_carry_the_schema():
    ids.clear()
    async with durable.testing.Runtime([svc, wf]) as rt:
        a = await rt.send(typed)
        b = await rt.send(untyped)
        w = await rt.send(run, key="w1")
        await rt.settle()
        ja, jb, jw = [await _journal(rt, i) for i in (a, b, w)]
        pa = json.loads(ja[1].payload)
        assert pa["schema"]["title"] == "Approval" and pa["schema"]["required"] == ["by"]
        assert set(json.loads(jb[1].payload)) == {"id"}
        assert json.loads(jw[1].payload) == {"schema": {"type": "integer"}}
        # replay after suspension matched the entries (kind and name only)
        await rt.resolve_awakeable(pa["id"], {"by": "ann"})
        assert await rt.output(a, typed) == "ann"
        await rt.engine.complete_promise("Gate", "w1", "n", json.dumps({"result": "7"}))
        assert await rt.output(w, run) == 7
