"""The TUI's top bar says when the runtime's store is degraded, and when it resumes."""

from __future__ import annotations

import httpx
import pytest
from tui_stub import EVENTS, StubRuntime, at, screen_text, wait_for

pytestmark = pytest.mark.timeout(60)

DEGRADED = (
    "store degraded, new requests get 503: the disk of the store /s/d.duckdb is full "
    "([Errno 28] No space left on device): free some space; the runtime retries and "
    "resumes by itself"
)


class StoreStub(StubRuntime):
    """The stub runtime, whose console goes on with the store's lines."""

    def __init__(self) -> None:
        super().__init__()
        self.more: list[tuple[int, str, str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/api/events":
            return super().handle(request)
        self.requests.append(request)
        after = int(request.url.params.get("after", 0))
        events = [
            {"seq": s, "at": at(s * 0.5), "level": lvl, "message": m}
            for s, lvl, m in [*EVENTS, *self.more]
            if s > after
        ]
        last = len(EVENTS) + len(self.more)
        return httpx.Response(200, json={"boot": "stub", "last": last, "events": events})


async def test_the_top_bar_says_the_store_is_degraded_until_it_resumes():
    stub = StoreStub()
    app = stub.app(interval=0.2)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.connected)
        assert "store degraded" not in screen_text(app)
        stub.more.append((len(EVENTS) + 1, "error", DEGRADED))
        await wait_for(pilot, lambda: app.store_degraded is not None)
        await wait_for(pilot, lambda: "⚠ store degraded" in screen_text(app))
        stub.more.append((len(EVENTS) + 2, "info", "the store takes writes again (it was ...)"))
        await wait_for(pilot, lambda: app.store_degraded is None)
        await wait_for(pilot, lambda: "⚠ store degraded" not in screen_text(app))
