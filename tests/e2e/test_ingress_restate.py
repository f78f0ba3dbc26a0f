"""The ingress answers as Restate 1.7's does (an app written with durable's own names;
tests/conformance/ plays the same against a real Restate server with `import restate`)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow

APP = """
from durable import Service, VirtualObject, Workflow, Context, ObjectContext, TerminalError
from durable import WorkflowContext, WorkflowSharedContext

svc = Service("Svc")

@svc.handler()
async def nothing(ctx: Context) -> None:
    return None

@svc.handler()
async def hello(ctx: Context) -> str:
    return "hello"

@svc.handler()
async def echo(ctx: Context, value: dict) -> dict:
    return value

@svc.handler()
async def fail(ctx: Context, message: str) -> str:
    raise TerminalError(message, status_code=418)

obj = VirtualObject("Obj")

@obj.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    total = (await ctx.get("n") or 0) + n
    ctx.set("n", total)
    return total

wf = Workflow("Wf")

@wf.main()
async def run(ctx: WorkflowContext, name: str) -> str:
    return name + ":" + await ctx.promise("p").value()

@wf.handler()
async def resolve(ctx: WorkflowSharedContext, value: str) -> None:
    await ctx.promise("p").resolve(value)
"""


@pytest.fixture
def srv(write_app, dev_server):
    return dev_server(write_app(APP))


def test_none_is_an_empty_200_and_every_answer_names_its_invocation(srv) -> None:
    with srv.client() as c:
        r = c.post("/Svc/nothing")
        assert r.status_code == 200 and r.content == b"", r.text
        assert "content-type" not in r.headers
        assert r.headers["x-restate-id"].startswith("inv_")
        r = c.post("/Svc/echo", json={"a": 1})
        assert r.json() == {"a": 1} and r.headers["x-restate-id"].startswith("inv_")
        r = c.post("/Svc/fail", json="boom")
        assert r.status_code == 418
        assert r.json() == {"code": 418, "message": "boom", "source": "invocation"}
        assert r.headers["x-restate-error-source"] == "invocation"
        inv = r.headers["x-restate-id"]
        assert c.get(f"/restate/invocation/{inv}/output").json()["message"] == "boom"
        r = c.post("/Svc/nope")
        assert r.status_code == 404 and r.json()["source"] == "ingress"
        assert r.headers["x-restate-error-source"] == "ingress"


def test_a_body_to_a_handler_without_input_is_a_400(srv) -> None:
    with srv.client() as c:
        assert c.post("/Svc/hello").json() == "hello"
        r = c.post("/Svc/hello", json="x")
        assert r.status_code == 400 and "Svc/hello takes no input" in r.json()["message"]


def test_delayed_send_says_when_it_runs(srv) -> None:
    with srv.client() as c:
        r = c.post("/Svc/echo/send?delay=500ms", json={"b": 2})
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["status"] == "Accepted" and r.headers["x-restate-id"] == body["invocationId"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", body["executionTime"])
        assert c.get(f"/restate/invocation/{body['invocationId']}/attach").json() == {"b": 2}
        r = c.post("/Svc/echo/send", json={"b": 3})
        assert "executionTime" not in r.json()


def test_attach_and_output_by_idempotency_key(srv) -> None:
    with srv.client() as c:
        r = c.post("/Obj/k1/add/send", json=2, headers={"idempotency-key": "once"})
        inv = r.json()["invocationId"]
        r = c.get("/restate/invocation/Obj/k1/add/once/attach")
        assert r.json() == 2 and r.headers["x-restate-id"] == inv
        assert c.get("/restate/invocation/Obj/k1/add/once/output").json() == 2
        r = c.post("/Obj/k1/add", json=2, headers={"idempotency-key": "once"})
        assert r.json() == 2 and r.headers["x-restate-id"] == inv
        r = c.post("/Svc/echo/send", json={"c": 1}, headers={"idempotency-key": "e"})
        assert c.get("/restate/invocation/Svc/echo/e/attach").json() == {"c": 1}
        r = c.get("/restate/invocation/Svc/echo/other/output")
        assert r.status_code == 404 and "idempotency key 'other'" in r.json()["message"]
        r = c.get("/restate/invocation/Obj/add/once/output")  # an object needs its key
        assert r.status_code == 400 and "{key}" in r.json()["message"]


def test_workflow_calls_as_restate(srv) -> None:
    with srv.client() as c:
        # a shared handler runs before the run exists: the promise waits for it
        assert c.post("/Wf/w1/resolve", json="early").status_code == 200
        r = c.post("/Wf/w1/run", json="a")
        assert r.json() == "a:early"
        inv = r.headers["x-restate-id"]
        r = c.post("/Wf/w1/run", json="a")
        assert r.status_code == 409 and r.headers["x-restate-id"] == inv
        assert r.json()["message"] == "the workflow method was already invoked"
        r = c.post("/Wf/w1/run/send", json="a")
        assert r.status_code == 202
        assert r.json() == {"invocationId": inv, "status": "PreviouslyAccepted"}
        r = c.post("/Wf/w2/run/send", json="b", headers={"idempotency-key": "x"})
        assert r.status_code == 400 and "idempotency key" in r.json()["message"]
