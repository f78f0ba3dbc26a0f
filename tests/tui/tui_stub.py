"""TUI test helpers: a stub admin API with fixed data (for snapshots), a fixed clock,
waiting on the app, and a plain-text view of the screen. Tests import them from
``tui_stub``; the ``stub`` fixture is in conftest.py."""

from __future__ import annotations

import io
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx
from durable.devtool.lifecycle import allowed_actions
from durable.devtool.tui.app import TuiApp
from rich.console import Console
from textual.pilot import Pilot

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def inv_id(n: int) -> str:
    """A fixed, realistic invocation id (newer for larger ``n``)."""
    rnd = random.Random(n)
    return f"inv_01jp4z{n:04d}" + "".join(rnd.choice(_ALPHABET) for _ in range(16))


def at(second: float) -> str:
    return f"2025-03-14T09:26:{second:06.3f}Z"


def fixed_now() -> datetime:
    return datetime(2025, 3, 14, 9, 27, 0, tzinfo=UTC)


AWK = "awk_Tj9ZgTN-8cmBcXt-Cp-xrdo"
SERVICES = [
    {"name": "Greeter", "kind": "service", "handlers": [{"name": "greet", "kind": "service"}]},
    {
        "name": "Order",
        "kind": "object",
        "handlers": [{"name": "process", "kind": "exclusive"}, {"name": "peek", "kind": "shared"}],
    },
    {"name": "Signup", "kind": "workflow", "handlers": [{"name": "run", "kind": "workflow"}]},
    {"name": "Flaky", "kind": "service", "handlers": [{"name": "boom", "kind": "service"}]},
]


def _inv(n: int, service: str, handler: str, key: str | None, status: str, **extra: Any) -> dict:
    item = {
        "id": inv_id(n),
        "service": service,
        "handler": handler,
        "key": key,
        "status": status,
        "created_at": at(n * 2.5),
        "modified_at": at(n * 2.5 + 1),
        "completed_at": None,
        "attempt": 1,
        "last_error": None,
        "next_retry_at": None,
        "scheduled_at": None,
        "journal_length": 2,
        "idempotency_key": None,
        "parent_id": None,
        "restarted_from": None,
        "failure": None,
        "waiting": [],
        "waits_on": None,
    }
    item.update(extra)
    return item


ORDER_O1 = 5
INVOCATIONS = [  # newest first
    _inv(10, "Greeter", "greet", None, "completed"),
    _inv(9, "Order", "process", "o2", "running"),
    _inv(
        8,
        "Flaky",
        "boom",
        None,
        "paused",
        attempt=3,
        last_error="ValueError: boom on purpose",
        waits_on="a person: resume, restart, cancel or kill it",
    ),
    _inv(
        7,
        "Flaky",
        "boom",
        None,
        "backing-off",
        attempt=2,
        last_error="ConnectionError: the bank did not answer",
        waits_on="retry at 09:26:30Z",
    ),
    _inv(6, "Signup", "run", "w1", "suspended", waits_on="promise 'confirmed'"),
    _inv(
        ORDER_O1,
        "Order",
        "process",
        "o1",
        "suspended",
        journal_length=6,
        waits_on=f"awakeable {AWK}",
    ),
    _inv(
        4,
        "Greeter",
        "greet",
        None,
        "failed",
        failure={"code": 500, "message": "no greeting for Bob"},
    ),
    _inv(3, "Order", "process", "o3", "killed", failure={"code": 409, "message": "killed"}),
    _inv(2, "Greeter", "greet", None, "scheduled", waits_on="its start time 2025-03-14T10:00:00Z"),
    _inv(
        1,
        "Order",
        "process",
        "o1",
        "pending",
        waits_on=f"its turn on key 'o1' (held by {inv_id(ORDER_O1)})",
    ),
]


def _entry(
    index: int, kind: str, name: str | None, second: float, state: dict | None, **kw: Any
) -> dict:
    e = {
        "index": index,
        "kind": kind,
        "name": name,
        "payload": None,
        "result": None,
        "failure": None,
        "completed": True,
        "created_at": at(second),
        "completed_at": at(second),
        "duration_ms": 0.0,
    }
    e.update(kw)
    if state is not None:
        e["state"] = state
    return e


def with_actions(item: dict) -> dict:
    """The item with the actions the admin API lists for its status."""
    return {**item, "actions": allowed_actions(item["status"])}


def tree_of(focus: str) -> dict:
    """``GET /api/invocations/{id}/tree``: a root, a call, its call, and a delayed send."""

    def node(n, handler, depth, parent, entry, via, start, end, status="completed"):
        return {
            "id": inv_id(n),
            "service": "Trip",
            "handler": handler,
            "key": None,
            "status": status,
            "created_at": at(start),
            "completed_at": at(end) if end is not None else None,
            "scheduled_at": None,
            "failure": None,
            "depth": depth,
            "parent": parent and inv_id(parent),
            "entry": entry,
            "via": via,
        }

    nodes = [
        node(20, "plan", 0, None, None, "root", 1.0, 23.8),
        node(21, "book", 1, 20, 4, "call", 14.2, 23.6),
        node(22, "charge", 2, 21, 2, "call", 14.3, 15.1),
        node(23, "remind", 1, 20, 5, "send", 23.7, 30.0),
        node(24, "notify", 2, 23, 1, "call", 29.0, 29.4, "killed"),
    ]
    return {"root": inv_id(20), "focus": focus, "nodes": nodes, "truncated": False, "note": None}


def detail(item: dict) -> dict:
    """``GET /api/invocations/{id}`` of a stub invocation."""
    body = with_actions(item)
    object_like = item["service"] in ("Order", "Signup")
    body.update(
        service_kind={"Order": "object", "Signup": "workflow"}.get(item["service"], "service"),
        request={
            "headers": {"user-agent": "curl/8.5.0", "content-type": "application/json"},
            "body": 5,
        },
        output_value="Hello Ann!"
        if item["status"] == "completed" and not item["failure"]
        else None,
        last_error_stack=(
            'Traceback (most recent call last):\n  File "app.py", line 61, in boom\n'
            '    raise ValueError("boom on purpose")\nValueError: boom on purpose'
            if item.get("last_error")
            else None
        ),
        attempts=[
            {
                "attempt": n,
                "started_at": item["created_at"],
                "ended_at": item["created_at"],
                "ms": 1.5,
                "error": "ValueError: boom on purpose",
                "location": "app.py:61",
                "stack": 'Traceback (most recent call last):\n  File "app.py", line 61, in boom\n'
                '    raise ValueError("boom on purpose")\nValueError: boom on purpose',
                "outcome": "paused" if n == 3 else "backing-off",
            }
            for n in (1, 2, 3)
        ]
        if item["id"] == inv_id(8)
        else [],
        logs=[
            {
                "at": item["created_at"],
                "attempt": 1,
                "stream": "stdout",
                "level": None,
                "message": "charging the card",
            }
        ]
        if item["id"] == inv_id(8)
        else [],
    )
    t = float(item["created_at"][17:23])
    if item["id"] == inv_id(ORDER_O1):
        body["journal"] = [
            _entry(0, "input", None, t, {}, payload=5),
            _entry(1, "get_state", "count", t + 0.012, {}),
            _entry(2, "set_state", "count", t + 0.014, {"count": 5}, payload=5),
            _entry(
                3,
                "run",
                "charge",
                t + 0.046,
                {"count": 5},
                result={"charged": 5, "card": "visa-4242", "ok": True},
                duration_ms=31.5,
            ),
            _entry(
                4,
                "awakeable",
                None,
                t + 0.113,
                {"count": 5},
                payload={"id": AWK},
                completed=False,
                completed_at=None,
                duration_ms=None,
            ),
            _entry(
                5, "set_state", "awakeable", t + 0.114, {"awakeable": AWK, "count": 5}, payload=AWK
            ),
        ]
    else:
        state = {"email": "ann@example.com"} if object_like else None
        body["journal"] = [_entry(0, "input", None, t, state and {}, payload="Ann")]
        if item["status"] == "completed":
            body["journal"].append(
                _entry(1, "output", None, t + 0.02, state, result=body["output_value"])
            )
    return body


PENDING = {
    "awakeables": [
        {
            "id": AWK,
            "invocation_id": inv_id(ORDER_O1),
            "entry_index": 4,
            "created_at": at(12.613),
            "service": "Order",
            "handler": "process",
            "key": "o1",
            "status": "suspended",
        }
    ],
    "promises": [
        {
            "id": "promise/Signup/w1/confirmed",
            "service": "Signup",
            "key": "w1",
            "name": "confirmed",
            "invocation_id": inv_id(6),
            "entry_index": 2,
            "created_at": at(15.2),
            "handler": "run",
            "status": "suspended",
        }
    ],
}
STATE = {
    ("Order", "o1"): {"count": 5, "awakeable": AWK},
    ("Order", "o2"): {"count": 12, "items": [{"sku": "tea", "qty": 2}, {"sku": "mug", "qty": 1}]},
    ("Signup", "w1"): {"email": "ann@example.com"},
}
EVENTS = [
    (1, "info", "store: .durable/durable.duckdb"),
    (2, "info", "ingress  http://127.0.0.1:8080"),
    (3, "info", "admin    http://127.0.0.1:9070"),
    (4, "info", "ready in 0.74s (app: app.py)"),
    (5, "error", f"Flaky/boom {inv_id(8)}: paused: ValueError: boom on purpose"),
    (6, "info", "reloaded in 412 ms (app.py); retrying 1 failed invocation(s)"),
    (7, "output", "charging card visa-4242"),
]


class StubRuntime:
    """A fake admin API over fixed data, as an httpx transport; it records requests."""

    def __init__(
        self, down: bool = False, events: bool = True, services_error: str | None = None
    ) -> None:
        self.down = down
        self.events = events  # False: a runtime from before /api/events
        self.services_error = services_error
        self.requests: list[httpx.Request] = []
        self.invocations = list(INVOCATIONS)  # a test may change them

    @property
    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def app(self, **kwargs: Any) -> TuiApp:
        kwargs.setdefault("interval", 60.0)  # loads once, when shown: still pictures
        return TuiApp("http://127.0.0.1:9070", transport=self.transport(), now=fixed_now, **kwargs)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        path = unquote(request.url.path)
        q = request.url.params
        parts = path.strip("/").split("/")
        if request.method == "POST":
            return self._post(parts, request)
        if path == "/health":
            return httpx.Response(200, json={"status": "ok", "counts": {}})
        if path == "/api/events" and self.events:
            after = int(q.get("after", 0))
            events = [
                {"seq": s, "at": at(s * 0.5), "level": lvl, "message": m}
                for s, lvl, m in EVENTS
                if s > after
            ]
            return httpx.Response(200, json={"boot": "stub", "last": len(EVENTS), "events": events})
        if path == "/api/services":
            body: dict[str, Any] = {"services": SERVICES, "error": self.services_error}
            if self.services_error and self.events:  # a runtime of today says since when
                first = self.services_error.splitlines()[0]
                body["app_error"] = {"error": self.services_error, "summary": first, "since": at(0)}
            return httpx.Response(200, json=body)
        if path == "/api/invocations":
            items = self.invocations
            statuses = [s for s in q.get("status", "").split(",") if s]
            for field in ("service", "handler", "key"):
                if q.get(field):
                    items = [i for i in items if i[field] == q[field]]
            if statuses:
                items = [i for i in items if i["status"] in statuses]
            if q.get("id"):
                items = [i for i in items if q["id"] in i["id"]]
            if q.get("q"):  # the runtime also searches inputs, outputs and errors
                text = q["q"].lower()
                items = [i for i in items if text in json.dumps(i).lower()]
            return httpx.Response(
                200,
                json={
                    "invocations": [with_actions(i) for i in items],
                    "next": None,
                    "prev": None,
                    "total": len(items),
                },
            )
        if parts[:2] == ["api", "invocations"] and len(parts) == 4 and parts[3] == "tree":
            return httpx.Response(200, json=tree_of(parts[2]))
        if parts[:2] == ["api", "invocations"] and len(parts) == 3:
            for item in self.invocations:
                if item["id"] == parts[2]:
                    return httpx.Response(200, json=detail(item))
            return httpx.Response(
                404, json={"code": 404, "message": f"unknown invocation {parts[2]}"}
            )
        if path == "/api/awakeables":
            return httpx.Response(200, json=PENDING)
        if parts[:2] == ["api", "state"] and len(parts) == 3:
            keys = [
                {"key": k, "entries": len(v)}
                for (s, k), v in sorted(STATE.items())
                if s == parts[2]
            ]
            return httpx.Response(200, json={"service": parts[2], "keys": keys})
        if parts[:2] == ["api", "state"] and len(parts) == 4:
            state = STATE.get((parts[2], parts[3]), {})
            return httpx.Response(
                200, json={"service": parts[2], "key": parts[3], "as_of": None, "state": state}
            )
        return httpx.Response(404, json={"code": 404, "message": f"unknown admin API path {path}"})

    def _post(self, parts: list[str], request: httpx.Request) -> httpx.Response:
        if parts[:2] == ["api", "invocations"] and len(parts) == 4:
            if parts[3] == "restart":
                body = json.loads(request.content)
                new = {"id": inv_id(10), "restarted_from": parts[2], "from": body["from"]}
                return httpx.Response(200, json={**new, "status": "ready"})
            done = {"cancel": "cancelled", "kill": "killed", "pause": "paused", "resume": "ready"}
            said = {
                "resume": "resumed: it is ready now",
                "pause": "paused: it runs again when resumed",
            }
            status = done.get(parts[3])
            body = {"id": parts[2], "action": parts[3], "status": status}
            return httpx.Response(200, json={**body, "message": said.get(parts[3], status)})
        return httpx.Response(200, json={"ok": True})


async def wait_for(
    pilot: Pilot, check: Callable[[], Any], timeout: float = 10.0, what: str = ""
) -> Any:
    """Let the app run until ``check()`` is true; fail with the screen after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except Exception:  # a widget not mounted yet, a row not there yet
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what or check}:\n{screen_text(pilot.app)}"
            )
        await pilot.pause(0.05)


def screen_text(app: TuiApp) -> str:
    """What the terminal shows, as plain text (for assertions and failure messages)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()
