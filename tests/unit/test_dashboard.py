"""The dashboard in process: its helpers, and its app over the in-process runtime's
engine (httpx over ASGI; the browser suite in tests/browser drives a real one)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import durable.testing
import httpx
import pytest
from durable import Context, ObjectContext, Service, VirtualObject
from durable.dashboard import create_dashboard
from durable.dashboard._forms import input_form, skeleton, value_from_form
from durable.dashboard._render import json_html, reltime
from durable.dashboard._security import host_allowed, same_origin
from durable.serde import json_schema
from starlette.datastructures import Headers

pytestmark = pytest.mark.timeout(30)

ADMIN = "http://127.0.0.1:9070"


# ---------------------------------------------------------------------------- helpers
def test_json_html_escapes_every_token() -> None:
    html = str(json_html({"<b>": "<script>alert(1)</script>", "n": [1, None, True]}))
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<span class="j-key">&#34;&lt;b&gt;&#34;</span>' in html
    assert '<span class="j-lit">null</span>' in html
    # a string that looks like markup after escaping stays text
    assert "&amp;lt;" in str(json_html("&lt;"))


def test_reltime() -> None:
    from datetime import UTC, datetime

    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert reltime("2024-05-01T11:59:57Z", now) == "3s ago"
    assert reltime("2024-05-01T10:00:00Z", now) == "2h ago"
    assert reltime("2024-05-01T12:05:00Z", now) == "in 5m"
    assert reltime(None, now) == ""


@dataclass
class Order:
    item: str
    qty: int = 1
    express: bool = False
    size: Literal["s", "m"] = "s"
    tags: list[str] | None = None


def test_form_from_a_dataclass() -> None:
    form = input_form(json_schema(Order))
    assert form.mode == "object"
    widgets = {f.label: (f.widget, f.required) for f in form.fields}
    assert widgets == {
        "item": ("text", True),
        "qty": ("integer", False),
        "express": ("checkbox", False),
        "size": ("select", False),
        "tags": ("json", False),
    }
    data = {"f.item": "pen", "f.qty": "3", "f.express": "true", "f.size": '"m"', "f.tags": ""}
    assert value_from_form(form, data) == {"item": "pen", "qty": 3, "express": True, "size": "m"}
    with pytest.raises(ValueError, match="qty: 'x' is not an integer"):
        value_from_form(form, {**data, "f.qty": "x"})
    with pytest.raises(ValueError, match="tags: not valid JSON"):
        value_from_form(form, {**data, "f.tags": "[1,"})
    # raw JSON wins over the fields
    assert value_from_form(form, {**data, "raw_json": '{"item": "cup"}'}) == {"item": "cup"}
    # the dataclass's defaults, as for a pydantic model
    assert json.loads(form.skeleton) == {
        "item": "",
        "qty": 1,
        "express": False,
        "size": "s",
        "tags": None,
    }
    assert {f.label: f.initial for f in form.fields}["qty"] == "1"


def test_form_from_a_pydantic_model_with_refs() -> None:
    from pydantic import BaseModel

    class Address(BaseModel):
        city: str

    class Person(BaseModel):
        name: str
        age: int = 30
        home: Address

    form = input_form(json_schema(Person))
    fields = {f.label: f for f in form.fields}
    assert fields["age"].initial == "30" and fields["name"].required
    assert fields["home"].widget == "json" and json.loads(fields["home"].initial) == {"city": ""}
    assert skeleton(json_schema(Person)) == {"name": "", "age": 30, "home": {"city": ""}}


def test_form_of_scalars_and_no_input() -> None:
    assert value_from_form(input_form({"type": "string"}), {"value": ""}) == ""
    assert value_from_form(input_form({"type": "integer"}), {"value": "7"}) == 7
    with pytest.raises(ValueError, match="required"):
        value_from_form(input_form({"type": "integer"}), {"value": ""})
    anything = input_form({})
    assert anything.fields[0].widget == "json"
    assert value_from_form(anything, {"value": '{"a": [1]}'}) == {"a": [1]}
    assert value_from_form(input_form(None, has_input=False), {}) is None


def test_same_origin_and_host() -> None:
    def h(**kw: str) -> Headers:
        return Headers(
            {"host": "127.0.0.1:9070", **{k.replace("_", "-"): v for k, v in kw.items()}}
        )

    assert same_origin(h(origin="http://127.0.0.1:9070"), "http")
    assert not same_origin(h(origin="http://127.0.0.1:8000"), "http")
    assert not same_origin(h(origin="https://127.0.0.1:9070"), "http")
    assert not same_origin(h(origin="null"), "http")
    assert same_origin(h(referer="http://127.0.0.1:9070/invocations"), "http")
    assert not same_origin(h(referer="http://localhost:9070/x"), "http")
    assert not same_origin(h(), "http")
    assert host_allowed("127.0.0.1:9070", "127.0.0.1")
    assert host_allowed("localhost:9070", "127.0.0.1")
    assert host_allowed("[::1]:9070", "127.0.0.1")
    assert not host_allowed("evil.example:9070", "127.0.0.1")
    assert not host_allowed("127.0.0.1.evil.example", "127.0.0.1")
    assert host_allowed("10.0.0.5:9070", "10.0.0.5")
    assert host_allowed("anything", "0.0.0.0")


# ---------------------------------------------------------------------------- the app
svc = Service("Jobs")
box = VirtualObject("Box")


@svc.handler()
async def job(ctx: Context, n: int) -> int:
    return await ctx.run("double", lambda: n * 2)


@svc.handler()
async def nap(ctx: Context, n: int) -> int:
    await ctx.sleep(timedelta(days=1))
    return n


@box.handler()
async def put(ctx: ObjectContext, value: str) -> str:
    ctx.set("v", value)
    return value


@pytest.fixture
async def dash():
    async with durable.testing.Runtime([svc, box]) as rt:
        app = create_dashboard(rt.engine, {"admin_url": ADMIN, "app": "test"})
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=ADMIN
        ) as client:
            yield rt, client


SAME = {"Origin": ADMIN}
HX = {"HX-Request": "true"}


@pytest.mark.timeout(30)
async def test_page_or_fragment_and_unchanged_polls(dash) -> None:
    rt, client = dash
    await rt.call(job, 1)
    page = await client.get("/invocations")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert page.headers["vary"] == "HX-Request"
    frag = await client.get("/invocations", headers=HX)
    assert frag.text.lstrip().startswith('<div id="inv-table"')
    v = frag.text.split('"v": "')[1].split('"')[0]
    assert (await client.get("/invocations", params={"v": v}, headers=HX)).status_code == 204
    await rt.call(job, 2)
    assert (await client.get("/invocations", params={"v": v}, headers=HX)).status_code == 200
    # a fragment without a page of its own comes in the layout for a plain request
    counts = await client.get("/invocations/count")
    assert counts.text.startswith("<!doctype html>") and "2</b> invocations" in counts.text


@pytest.mark.timeout(30)
async def test_actions_need_the_same_origin(dash) -> None:
    rt, client = dash
    inv = await rt.send(nap, 1)
    await rt.settle()
    url = f"/invocations/{inv}/kill"
    assert (await client.post(url)).status_code == 403
    assert (await client.post(url, headers={"Origin": "http://evil.example"})).status_code == 403
    assert (await client.get(url)).status_code == 405
    assert await rt.status(inv) != "killed"
    r = await client.post(url, headers={**SAME, **HX})
    assert r.status_code == 200 and "Killed: it stopped at once" in r.text
    assert await rt.status(inv) == "killed"
    again = await client.post(url, headers={**SAME, **HX})
    assert "nothing to kill" in again.text
    plain = await client.post(f"/invocations/{inv}/kill", headers=SAME)
    assert plain.status_code == 409 and plain.text.startswith("<!doctype html>")


@pytest.mark.timeout(30)
async def test_bulk_over_a_filter(dash) -> None:
    rt, client = dash
    ids = [await rt.send(nap, i) for i in range(3)]
    await rt.call(job, 5)
    await rt.settle()
    q = {"service": "Jobs", "handler": "nap", "action": "cancel"}
    confirm = await client.get("/invocations/bulk", params=q, headers=HX)
    assert "Cancel 3 invocations" in confirm.text
    assert [await rt.status(i) for i in ids].count("cancelled") == 0  # GET changes nothing
    done = await client.post("/invocations/bulk", data=q, headers={**SAME, **HX})
    assert "3 done" in done.text
    await rt.settle()
    assert [await rt.status(i) for i in ids] == ["cancelled"] * 3
    bad = await client.get("/invocations/bulk", params={"action": "explode"}, headers=HX)
    assert "pick an action" in bad.text


@pytest.mark.timeout(30)
async def test_state_of_an_odd_key_round_trips(dash) -> None:
    rt, client = dash
    key = "a/../b?c=#d e"
    await rt.call(put, "x", key=key)
    keys = await client.get("/state", params={"service": "Box"})
    assert ">a/../b?c=#d e<" in keys.text
    page = await client.get("/state", params={"service": "Box", "key": key})
    assert 'data-name="v"' in page.text and "&#34;x&#34;" in page.text
    r = await client.post(
        "/state/set",
        data={"service": "Box", "key": key, "name": "v", "value": "[1, 2"},
        headers={**SAME, **HX},
    )
    assert "not valid JSON" in r.text
    r = await client.post(
        "/state/set",
        data={"service": "Box", "key": key, "name": "v", "value": '{"n": 2}'},
        headers={**SAME, **HX},
    )
    assert "Set &#39;v&#39;" in r.text
    assert await rt.state("Box", key) == {"v": {"n": 2}}


@pytest.mark.timeout(30)
async def test_unknown_things_are_404_pages(dash) -> None:
    _rt, client = dash
    for path in ("/invocations/nope", "/invocations/inv_00000000000000000000000000", "/nowhere"):
        r = await client.get(path)
        assert r.status_code == 404 and "<!doctype html>" in r.text, path
    static = await client.get("/static/dashboard.css")
    assert static.status_code == 200 and "prefers-color-scheme" in static.text


@pytest.mark.timeout(30)
async def test_state_as_of_an_entry(dash) -> None:
    rt, client = dash
    inv = await rt.send(put, "one", key="k")
    await rt.output(inv, put)
    # the virtual clock stands still: move it, or both changes share one timestamp and
    # "as of entry 1" cannot tell them apart (state_history has no commit order here)
    await rt.advance(timedelta(seconds=1))
    await rt.call(put, "two", key="k")
    r = await client.get(f"/invocations/{inv}/state", params={"entry": 1}, headers=HX)
    assert 'data-entry="1"' in r.text and "&#34;one&#34;" in r.text and "added" in r.text
    r = await client.get(f"/invocations/{inv}/state", params={"entry": 0}, headers=HX)
    assert "no state at this point" in r.text
    r = await client.get(f"/invocations/{inv}/state", params={"entry": 99}, headers=HX)
    assert r.status_code == 200 and "has no journal entry 99" in r.text
    assert (await client.get(f"/invocations/{inv}/state", params={"entry": 99})).status_code == 404
    job_id = await rt.send(job, 1)
    r = await client.get(f"/invocations/{job_id}/state", params={"entry": 0})
    assert r.status_code == 404 and "it has no state" in r.text


@pytest.mark.timeout(30)
async def test_count_chips_follow_the_filters(dash) -> None:
    rt, client = dash
    await rt.call(job, 1)
    await rt.send(nap, 1)
    await rt.send(nap, 2)
    await rt.settle()

    async def chips(**params: str) -> str:
        r = await client.get("/invocations/count", params=params, headers=HX)
        return " ".join(r.text.split())

    every = await chips()
    assert "completed 1</a>" in every and "suspended 2</a>" in every
    assert "<b>3</b> invocations" in every
    only_job = await chips(handler="job")
    assert "completed 1</a>" in only_job and "suspended" not in only_job, only_job
    assert "<b>1</b> matching" in only_job
    # a status filter does not hide the other statuses' chips: they switch to them
    naps = await chips(handler="nap", status="completed")
    assert "suspended 2</a>" in naps and "completed" not in naps.split("</span>", 1)[1]
    one = await chips(service="Nobody")
    assert "<b>0</b> matching" in one


@pytest.mark.timeout(30)
async def test_a_sleep_shows_its_wake_up_time_not_epoch_ms(dash) -> None:
    rt, client = dash
    inv = await rt.send(nap, 1)
    await rt.settle()
    page = " ".join((await client.get(f"/invocations/{inv}")).text.split())
    assert "1d" in page and "86400000" in page  # the duration, in words and in ms
    wake = re.search(r"wake_at.{0,80}?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", page)
    assert wake is not None, page
    assert not re.search(r"wake_at\W+\d{13}", page)
