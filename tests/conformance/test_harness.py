"""The scenario player catches every kind of difference it claims to compare (a real
HTTP server on 127.0.0.1 that answers fixed responses)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.conformance.harness import (
    ABSENT,
    EMPTY,
    Expect,
    Mismatch,
    Scenario,
    Side,
    Step,
    Var,
    error,
    ok,
    play,
)

ANSWERS = {
    "/json": (200, {"x-restate-id": "inv_1", "content-type": "application/json"}, b'{"a": 1}'),
    "/none": (200, {"x-restate-id": "inv_1"}, b""),
    "/err": (
        418,
        {"x-restate-error-source": "invocation", "content-type": "application/json"},
        b'{"code": 418, "message": "boom", "source": "invocation"}',
    ),
    "/inv_1": (200, {"x-restate-id": "inv_1", "content-type": "application/json"}, b'"seen"'),
}


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        status, headers, body = ANSWERS.get(self.path, (404, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def side() -> Iterator[Side]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield Side("restate", url, lambda action, inv: httpx.Response(202))
    finally:
        server.shutdown()
        server.server_close()


def _one(step: Step) -> Scenario:
    return Scenario("probe", "services", (step,))


def test_matching_answers_pass_and_captures_carry_over(side: Side) -> None:
    play(
        Scenario(
            "probe",
            "services",
            (
                Step("POST", "/json", ok({"a": 1}, capture={"inv": "header.x-restate-id"})),
                Step("GET", "/{inv}", ok("seen", headers={"x-restate-id": Var("inv")})),
                Step("POST", "/none", ok(EMPTY)),
                Step("POST", "/err", error(418, "invocation", "boom")),
            ),
        ),
        side,
        "u",
    )


@pytest.mark.parametrize(
    "step, says",
    [
        (Step("POST", "/json", ok({"a": 2})), "body {'a': 1}, expected {'a': 2}"),
        (Step("POST", "/json", Expect(201)), "status 200, expected 201"),
        (Step("POST", "/none", ok({"a": 1})), "expected {'a': 1}"),
        (Step("POST", "/json", ok(EMPTY)), "header content-type: 'application/json'"),
        (Step("POST", "/json", ok({"a": 1}, headers={"x-restate-id": ABSENT})), "expected none"),
        (Step("POST", "/err", error(418, "invocation", "bang")), "body['message'] = 'boom'"),
        (Step("POST", "/err", error(418, "ingress")), "body['source'] = 'invocation'"),
        (Step("POST", "/none", ok(lambda b: b == "x")), "does not satisfy"),
    ],
)
def test_each_kind_of_difference_is_caught(side: Side, step: Step, says: str) -> None:
    with pytest.raises(Mismatch) as caught:
        play(_one(step), side, "u")
    assert says in str(caught.value)


def test_durable_side_uses_the_documented_difference(side: Side) -> None:
    step = Step("POST", "/json", ok({"a": 2}), durable=ok({"a": 1}), why="a reason")
    play(_one(step), Side("durable", side.ingress, side.admin), "u")
    with pytest.raises(Mismatch):
        play(_one(step), side, "u")


def test_serve_side_uses_its_own_difference_and_else_restates_answer(side: Side) -> None:
    step = Step(
        "POST", "/json", ok({"a": 2}), durable=ok({"a": 1}), serve=ok({"a": 1}), serve_why="r"
    )
    play(_one(step), Side("serve", side.ingress, side.admin), "u")
    with pytest.raises(Mismatch):
        play(_one(step), side, "u")
    only_durable = Step("POST", "/json", ok({"a": 1}), durable=ok({"a": 2}), why="a reason")
    play(_one(only_durable), Side("serve", side.ingress, side.admin), "u")  # Restate's
    with pytest.raises(Mismatch):
        play(_one(only_durable), Side("durable", side.ingress, side.admin), "u")
