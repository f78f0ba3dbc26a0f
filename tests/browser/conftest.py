"""Browser tests of the dashboard: Debian's Chromium driven by Playwright's sync API
against one real ``durable dev`` runtime for the whole browser suite.

Chromium is the system one (``/usr/bin/chromium``, ``apt-get install chromium``); nothing
is downloaded. Screenshots of every page go to ``test-artifacts/`` (not committed).
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = os.environ.get("DURABLE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

APP = """
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import durable
from durable import (
    Context, ObjectContext, Service, TerminalError, VirtualObject, Workflow, WorkflowContext,
)


@dataclass
class Order:
    item: str
    qty: int = 1
    express: bool = False


@dataclass
class Approval:
    by: str
    ok: bool = True


shop = Service("Shop")


@shop.handler()
async def buy(ctx: Context, order: Order) -> dict:
    price = await ctx.run("price", lambda: 3 * order.qty)
    return {"item": order.item, "price": price, "express": order.express}


@shop.handler()
async def slow(ctx: Context, n: int) -> int:
    await ctx.sleep(timedelta(hours=1))
    return n


@shop.handler()
async def approve(ctx: Context, who: str) -> str:
    aw_id, approval = ctx.awakeable(type_hint=Approval)
    await ctx.run("publish", lambda: aw_id)
    got = await approval
    return f"{who} approved by {got.by}"


@shop.handler()
async def fail(ctx: Context, message: str) -> str:
    raise TerminalError(message, 400)


@shop.handler()
async def flaky(ctx: Context, message: str) -> str:
    raise ValueError(message)


@shop.handler()
async def noisy(ctx: Context, item: str) -> str:
    print(f"looking for <b>{item}</b>")
    durable.getLogger("shop").warning("low stock of %s", item)
    return item


steps = Service("Steps")


@steps.handler()
async def three(ctx: Context, n: int) -> int:
    a = await ctx.run("a", lambda: n + 1)
    b = await ctx.run("b", lambda: a * 2)
    c = await ctx.run("c", lambda: b + 100)
    return c


cart = VirtualObject("Cart")


@cart.handler()
async def fill(ctx: ObjectContext, label: str) -> str:
    ctx.set("a", 1)
    ctx.set("b", "two")
    await ctx.run("pause", lambda: None)
    ctx.set("a", 3)
    ctx.clear("b")
    return label


@cart.handler()
async def put(ctx: ObjectContext, value: Any) -> Any:
    ctx.set("value", value)
    return value


trip = Service("Trip")


@trip.handler()
async def plan(ctx: Context, city: str) -> str:
    await ctx.run("quote", lambda: city.upper())
    await ctx.sleep(timedelta(milliseconds=1200))
    aw_id, seat = ctx.awakeable(type_hint=str)
    ctx.service_send(book, f"{city}:{aw_id}")
    got = await seat
    return await ctx.service_call(book, f"{city} seat {got}")


@trip.handler()
async def book(ctx: Context, what: str) -> str:
    return "queued" if ":" in what else f"booked {what}"


signup = Workflow("Signup")


@signup.main()
async def run(ctx: WorkflowContext, email: str) -> str:
    code = await ctx.promise("code", type_hint=int).value()
    return f"{email}: {code}"
"""


LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module.

    Module-scoped on purpose (not pytest-playwright's session-scoped one): Playwright's
    sync API keeps its own event loop running on the main thread while it is started,
    and the asyncio tests that run after the browser suite need that thread's loop.
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (see .ci/run)")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (cookies, storage) and page at 1280x800."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class Runtime:
    """The suite's ``durable dev`` (a tests/conftest.py DevServer) with a few helpers."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = server.url
        self.admin_url = server.admin_url
        self.http = httpx.Client(timeout=30)

    def send(self, path: str, body: Any = None) -> str:
        """POST .../send; the invocation id."""
        r = self.http.post(f"{self.url}{path}/send", json=body)
        assert r.status_code == 202, r.text
        return r.json()["invocationId"]

    def call(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.post(f"{self.url}{path}", json=body)

    def invocation(self, inv_id: str) -> dict[str, Any]:
        r = self.http.get(f"{self.admin_url}/api/invocations/{inv_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def wait_status(self, inv_id: str, *statuses: str, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            inv = self.invocation(inv_id)
            if inv["status"] in statuses:
                return inv
            if time.monotonic() > deadline:
                raise AssertionError(f"{inv_id} is {inv['status']}, not {statuses}")
            time.sleep(0.05)


def _dev_server_class(config: pytest.Config) -> type:
    """tests/conftest.py's DevServer (conftest modules are not importable by name)."""
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == ROOT_CONFTEST:
            return plugin.DevServer
    raise RuntimeError("tests/conftest.py is not loaded")


@pytest.fixture(scope="session")
def runtime(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runtime]:
    folder = tmp_path_factory.mktemp("dashboard")
    app = folder / "app.py"
    app.write_text(textwrap.dedent(APP))
    server = _dev_server_class(request.config)(
        app, folder / "store" / "durable.duckdb", folder, ["--no-reload"]
    )
    server.start()
    rt = Runtime(server)
    try:
        yield rt
    finally:
        rt.http.close()
        server.stop()
