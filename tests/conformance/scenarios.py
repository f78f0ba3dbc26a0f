"""The conformance scenarios: requests to ``app.py`` and Restate 1.7's answers.

Every answer here was seen from a real restate-server 1.7.12 with restate-sdk 1.3.0; a
step with ``durable=`` is a deliberate difference, and its ``why`` is in the Ingress
table of docs/restate-compat.md (tests/conformance/test_conformance.py checks both ways).
"""

from __future__ import annotations

from typing import Any

from tests.conformance.harness import ABSENT, EMPTY, PRESENT, Expect, Scenario, Step, Var, error, ok

__all__ = ["SCENARIOS"]


def post(path: str, expect: Expect, **kw: Any) -> Step:
    return Step("POST", path, expect, **kw)


def get(path: str, expect: Expect, **kw: Any) -> Step:
    return Step("GET", path, expect, **kw)


def accepted(previously: bool = False, delayed: bool = False, **kw: Any) -> Expect:
    """A 202 of a one-way call; remembers the invocation id as ``inv`` unless told."""
    status = "PreviouslyAccepted" if previously else "Accepted"

    def answer(body: Any) -> bool:
        if not isinstance(body, dict) or body.get("status") != status:
            return False
        if not str(body.get("invocationId", "")).startswith("inv_"):
            return False
        keys = {"invocationId", "status"} | ({"executionTime"} if delayed else set())
        if delayed and not _rfc3339(body.get("executionTime")):
            return False
        return set(body) == keys

    answer.__name__ = f"a 202 {status}" + (" with executionTime" if delayed else "")
    capture = kw.pop("capture", {"inv": "body.invocationId"})
    headers = {"x-restate-id": PRESENT, **kw.pop("headers", {})}
    return Expect(202, answer, headers, capture)


def _rfc3339(text: Any) -> bool:
    import re

    return isinstance(text, str) and bool(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text)
    )


def a_string(body: Any) -> bool:
    return isinstance(body, str) and len(body) > 0


SCENARIOS: list[Scenario] = [
    # ------------------------------------------------------------------ services
    Scenario(
        "service_json_in_json_out",
        "services",
        (
            post("/Echo/same", ok({"a": [1, 2]}), json={"a": [1, 2]}),
            post(
                "/Echo/same",
                ok(2),
                raw=b"2",
                headers={"content-type": "application/json; charset=utf-8"},
            ),
        ),
    ),
    Scenario(
        "service_returning_none_is_an_empty_200",
        "services",
        (post("/Echo/nothing", ok(EMPTY)),),
    ),
    Scenario(
        "service_without_input_takes_no_body",
        "services",
        (
            post("/Echo/hello", ok("hello")),
            post("/Echo/hello", error(400, "ingress"), json="unexpected"),
        ),
    ),
    Scenario(
        "service_empty_body_is_none",
        "services",
        (post("/Echo/same", ok(EMPTY)),),
    ),
    Scenario(
        "service_json_without_content_type",
        "services",
        (
            post(
                "/Echo/same",
                error(400, "ingress"),
                raw=b'{"a": 1}',
                durable=ok({"a": 1}),
                why="durable reads a JSON body whatever its content type (curl -d habits)",
            ),
            post(
                "/Echo/hello",
                error(400, "ingress"),
                headers={"content-type": "application/json"},
                durable=ok("hello"),
                why="durable ignores the content type of an empty body",
            ),
        ),
    ),
    Scenario(
        "service_journaled_run",
        "services",
        (post("/Echo/journaled", ok(43), json=21),),
    ),
    Scenario(
        "service_calls_a_service",
        "services",
        (post("/Echo/calls", ok({"got": {"x": 1}}), json={"x": 1}),),
    ),
    Scenario(
        "service_sleeps",
        "services",
        (post("/Echo/naps", ok("slept 50 ms"), json=50),),
    ),
    Scenario(
        "service_pydantic_input",
        "services",
        (post("/Echo/greet", ok("Ann is 7"), json={"name": "Ann", "age": 7}),),
    ),
    Scenario(
        "service_pydantic_through_run",
        "services",
        (post("/Echo/birthday", ok({"name": "ANN", "age": 8}), json={"name": "Ann", "age": 7}),),
    ),
    Scenario(
        "service_gathers_calls",
        "services",
        (post("/Echo/together", ok([1, 3, 5]), json=3),),
    ),
    Scenario(
        "service_select_awakeable_or_sleep",
        "services",
        (post("/Echo/first_of", ok("timed out"), json="x"),),
    ),
    Scenario(
        "service_unknown_handler_and_service",
        "services",
        (
            post("/Echo/nope", error(404, "ingress")),
            post("/Nope/nope", error(404, "ingress")),
            post("/Echo/k/same", error(400, "ingress"), json=1),
            post("/Echo", error(400, "ingress"), json=1),
        ),
    ),
    Scenario(
        "service_send_then_output",
        "services",
        (
            post("/Echo/same/send", accepted(), json={"b": 2}),
            get(
                "/restate/invocation/{inv}/attach",
                ok({"b": 2}, headers={"x-restate-id": Var("inv")}),
            ),
            get("/restate/invocation/{inv}/output", ok({"b": 2})),
        ),
    ),
    Scenario(
        "invocation_unknown_and_malformed_id",
        "services",
        (
            get("/restate/invocation/nonsense/output", error(400, "ingress")),
            get("/restate/invocation/inv_/attach", error(400, "ingress")),
        ),
    ),
    # ---------------------------------------------------------- errors and retries
    Scenario(
        "terminal_error_status_and_body",
        "errors",
        (
            post(
                "/Echo/fail",
                error(418, "invocation", "boom", headers={"x-restate-id": PRESENT}),
                json="boom",
            ),
        ),
    ),
    Scenario(
        "terminal_error_crosses_a_call",
        "errors",
        (post("/Echo/catches", ok("caught 418: bad"), json="bad"),),
    ),
    Scenario(
        "run_retried_until_it_succeeds",
        "errors",
        (post("/Echo/retried", ok(3), json="retried-{u}"),),
    ),
    Scenario(
        "run_gives_up_after_max_attempts",
        "errors",
        (
            post(
                "/Echo/gives_up", error(503, "invocation", "gave up after 2 attempts"), json="g-{u}"
            ),
        ),
    ),
    Scenario(
        "malformed_json_body",
        "errors",
        (
            post(
                "/Echo/same",
                error(500, "invocation"),
                raw=b"{bad",
                headers={"content-type": "application/json"},
                durable=error(400, "ingress"),
                why="a caller's mistake is a 4xx before anything is stored, naming what is wrong",
                serve=error(400, "invocation"),
                serve_why="durable's serde reads the input (a 400 naming what is wrong, as "
                "under durable dev), in the handler: Restate's ingress has stored it by then",
            ),
        ),
    ),
    Scenario(
        "input_fails_validation",
        "errors",
        (
            post(
                "/Echo/greet",
                error(500, "invocation"),
                json={"name": 5},
                durable=error(400, "invocation"),
                why="a caller's mistake is a 4xx naming the field (the invocation fails with it)",
                serve=error(400, "invocation"),
                serve_why="durable's serde reads the input: durable dev's answer",
            ),
        ),
    ),
    Scenario(
        "method_other_than_post",
        "errors",
        (
            Step("PUT", "/Echo/hello", error(405, "ingress")),
            get(
                "/Echo/hello",
                ok("hello"),
                durable=error(405, "ingress"),
                why="no GET changes anything on durable (a link or an image tag must not "
                "start an invocation)",
            ),
        ),
    ),
    # ------------------------------------------------------------ virtual objects
    Scenario(
        "object_state_across_calls",
        "objects",
        (
            post("/Counter/c-{u}/add", ok(1), json=1),
            post("/Counter/c-{u}/add", ok(3), json=2),
            post("/Counter/c-{u}/total", ok(3)),
            post("/Counter/other-{u}/total", ok(0)),
        ),
    ),
    Scenario(
        "object_clear_returns_none",
        "objects",
        (
            post("/Counter/r-{u}/add", ok(5), json=5),
            post("/Counter/r-{u}/reset", ok(EMPTY)),
            post("/Counter/r-{u}/total", ok(0)),
        ),
    ),
    Scenario(
        "object_state_keys_and_clear_all",
        "objects",
        (
            post("/Counter/k-{u}/keys", ok(["a", "b"])),
            post("/Counter/k-{u}/clear_everything", ok([])),
        ),
    ),
    Scenario(
        "object_needs_a_key",
        "objects",
        (post("/Counter/add", error(400, "ingress"), json=1),),
    ),
    Scenario(
        "object_key_with_a_slash",
        "objects",
        (
            post("/Counter/a%2Fb-{u}/add", ok(2), json=2),
            post("/Counter/a%2Fb-{u}/total", ok(2)),
            post("/Counter/a-{u}/total", ok(0)),
        ),
    ),
    Scenario(
        "object_shared_runs_while_exclusive_waits",
        "objects",
        (
            post("/Counter/s-{u}/add", ok(7), json=7),
            post("/Counter/s-{u}/wait_for_signal/send", accepted()),
            post("/Counter/s-{u}/awakeable_id", ok(a_string, capture={"awk": "body"}), until=10),
            post("/Counter/s-{u}/total", ok(7)),  # shared: not queued behind the waiter
            get("/restate/invocation/{inv}/output", error(470, "ingress")),
            post(
                "/Counter/s-{u}/add/send", accepted(capture={"queued": "body.invocationId"}), json=1
            ),
            get("/restate/invocation/{queued}/output", error(470, "ingress")),  # queued
            post("/restate/awakeables/{awk}/resolve", Expect(202, EMPTY), json="go"),
            get("/restate/invocation/{queued}/attach", ok(8)),
            get("/restate/invocation/{inv}/output", ok("signal: go")),
        ),
    ),
    # ----------------------------------------------------------------- awakeables
    Scenario(
        "awakeable_resolved_over_http",
        "awakeables",
        (
            post("/Counter/w-{u}/wait_for_signal/send", accepted()),
            post("/Counter/w-{u}/awakeable_id", ok(a_string, capture={"awk": "body"}), until=10),
            post("/restate/awakeables/{awk}/resolve", Expect(202, EMPTY), json="hi"),
            get("/restate/invocation/{inv}/attach", ok("signal: hi")),
        ),
    ),
    Scenario(
        "awakeable_rejected_over_http",
        "awakeables",
        (
            post("/Counter/x-{u}/wait_for_signal/send", accepted()),
            post("/Counter/x-{u}/awakeable_id", ok(a_string, capture={"awk": "body"}), until=10),
            post(
                "/restate/awakeables/{awk}/reject",
                Expect(202, EMPTY),
                raw=b"no way",
                headers={"content-type": "text/plain"},
            ),
            get("/restate/invocation/{inv}/attach", error(500, "invocation", "no way")),
            post("/Counter/x-{u}/compensated", ok(True)),
        ),
    ),
    Scenario(
        "awakeable_completed_twice",
        "awakeables",
        (
            post("/Counter/y-{u}/wait_for_signal/send", accepted()),
            post("/Counter/y-{u}/awakeable_id", ok(a_string, capture={"awk": "body"}), until=10),
            post("/restate/awakeables/{awk}/resolve", Expect(202, EMPTY), json="one"),
            get("/restate/invocation/{inv}/attach", ok("signal: one")),
            post(
                "/restate/awakeables/{awk}/resolve",
                Expect(202, EMPTY),
                json="two",
                durable=error(409, "ingress"),
                why="a second completion is a caller's mistake that durable reports (the "
                "first value stays, as on Restate)",
            ),
        ),
    ),
    Scenario(
        "awakeable_resolved_by_a_handler",
        "awakeables",
        (
            post("/Counter/v-{u}/wait_for_signal/send", accepted()),
            post("/Counter/v-{u}/awakeable_id", ok(a_string), until=10),
            post("/Echo/wakes", ok("woken"), json="v-{u}"),
            get("/restate/invocation/{inv}/attach", ok("signal: from a handler")),
        ),
    ),
    Scenario(
        "awakeable_malformed_id",
        "awakeables",
        (post("/restate/awakeables/sign_1xx/resolve", error(400, "ingress"), json=1),),
    ),
    # ---------------------------------------------------------------- idempotency
    Scenario(
        "idempotent_call_twice",
        "idempotency",
        (
            post(
                "/Counter/i-{u}/add",
                ok(4, capture={"inv": "header.x-restate-id"}),
                json=4,
                headers={"idempotency-key": "k-{u}"},
            ),
            post(
                "/Counter/i-{u}/add",
                ok(4, headers={"x-restate-id": Var("inv")}),
                json=4,
                headers={"idempotency-key": "k-{u}"},
            ),
            post("/Counter/i-{u}/total", ok(4)),
        ),
    ),
    Scenario(
        "idempotent_send_twice",
        "idempotency",
        (
            post("/Echo/same/send", accepted(), json=[1], headers={"idempotency-key": "s-{u}"}),
            post(
                "/Echo/same/send",
                accepted(previously=True, capture={"again": "body.invocationId"}),
                json=[1],
                headers={"idempotency-key": "s-{u}"},
            ),
            get(
                "/restate/invocation/{again}/attach", ok([1], headers={"x-restate-id": Var("inv")})
            ),
            post(  # a call with the key of an earlier send answers that send's result
                "/Echo/same",
                ok([1], headers={"x-restate-id": Var("inv")}),
                json=[1],
                headers={"idempotency-key": "s-{u}"},
            ),
        ),
    ),
    Scenario(
        "attach_and_output_by_idempotency_key",
        "idempotency",
        (
            post("/Echo/same/send", accepted(), json="v", headers={"idempotency-key": "a-{u}"}),
            get(
                "/restate/invocation/Echo/same/a-{u}/attach",
                ok("v", headers={"x-restate-id": Var("inv")}),
            ),
            get("/restate/invocation/Echo/same/a-{u}/output", ok("v")),
            get("/restate/invocation/Echo/same/missing-{u}/output", error(404, "ingress")),
            get(
                "/restate/invocation/Echo/same/missing-{u}/attach",
                error(404, "invocation"),
                durable=error(404, "ingress"),
                why="durable refuses at the ingress (no invocation has the key); Restate "
                "creates an attach invocation that finds nothing",
            ),
        ),
    ),
    Scenario(
        "attach_by_idempotency_key_of_an_object",
        "idempotency",
        (
            post(
                "/Counter/o-{u}/add/send", accepted(), json=2, headers={"idempotency-key": "o-{u}"}
            ),
            get("/restate/invocation/Counter/o-{u}/add/o-{u}/attach", ok(2)),
            get("/restate/invocation/Counter/o-{u}/add/o-{u}/output", ok(2)),
        ),
    ),
    # ------------------------------------------------------------- delayed sends
    Scenario(
        "delayed_send",
        "delayed sends",
        (
            post("/Echo/same/send?delay=2s", accepted(delayed=True), json="later"),
            get("/restate/invocation/{inv}/output", error(470, "ingress")),
            get("/restate/invocation/{inv}/attach", ok("later")),
        ),
    ),
    Scenario(
        "delayed_send_iso_8601",
        "delayed sends",
        (
            post("/Echo/same/send?delay=PT0.5S", accepted(delayed=True), json="iso"),
            get("/restate/invocation/{inv}/attach", ok("iso")),
            post("/Echo/same/send?delay=0s", accepted(delayed=True), json="now"),
            post("/Echo/same/send?delay=soon", error(400, "ingress"), json="x"),
            post("/Echo/same?delay=1s", error(400, "ingress"), json="x"),
        ),
    ),
    Scenario(
        "delayed_send_from_a_handler",
        "delayed sends",
        (
            post("/Echo/sends_later", ok("sent"), json="d-{u}"),
            post("/Counter/d-{u}/total", ok(0)),
            post("/Counter/d-{u}/total", ok(5), until=10),
        ),
    ),
    # ---------------------------------------------------------------- workflows
    Scenario(
        "workflow_run_and_promise",
        "workflows",
        (
            post("/Signup/w-{u}/run/send", accepted(), json="a@x"),
            post("/Signup/w-{u}/stage", ok("waiting"), until=10),
            get("/restate/workflow/Signup/w-{u}/output", error(470, "ingress")),
            post("/Signup/w-{u}/confirm", ok(EMPTY), json="123"),
            get(
                "/restate/workflow/Signup/w-{u}/attach",
                ok("a@x confirmed with 123", headers={"x-restate-id": Var("inv")}),
            ),
            get("/restate/workflow/Signup/w-{u}/output", ok("a@x confirmed with 123")),
            post("/Signup/w-{u}/stage", ok("done")),
        ),
    ),
    Scenario(
        "workflow_shared_handler_before_the_run",
        "workflows",
        (
            post("/Signup/e-{u}/peek", ok(EMPTY)),
            post("/Signup/e-{u}/confirm", ok(EMPTY), json="early"),
            post("/Signup/e-{u}/peek", ok("early")),
            post("/Signup/e-{u}/run", ok("b@x confirmed with early"), json="b@x"),
        ),
    ),
    Scenario(
        "workflow_main_twice_is_a_409",
        "workflows",
        (
            post("/Signup/t-{u}/confirm", ok(EMPTY), json="1"),
            post(
                "/Signup/t-{u}/run",
                ok("c@x confirmed with 1", capture={"inv": "header.x-restate-id"}),
                json="c@x",
            ),
            post(
                "/Signup/t-{u}/run",
                error(
                    409,
                    "invocation",
                    "the workflow method was already invoked",
                    headers={"x-restate-id": Var("inv")},
                ),
                json="c@x",
            ),
            post(
                "/Signup/t-{u}/run/send",
                accepted(previously=True, capture={"again": "body.invocationId"}),
                json="c@x",
            ),
            get(
                "/restate/invocation/{again}/output",
                ok("c@x confirmed with 1", headers={"x-restate-id": Var("inv")}),
            ),
        ),
    ),
    Scenario(
        "workflow_send_twice",
        "workflows",
        (
            post("/Signup/s-{u}/run/send", accepted(), json="d@x"),
            post(
                "/Signup/s-{u}/run/send",
                accepted(previously=True, capture={"again": "body.invocationId"}),
                json="d@x",
            ),
            get("/restate/invocation/{again}/output", error(470, "ingress", headers={})),
            post("/Signup/s-{u}/deny", ok(EMPTY), json="no"),
            get("/restate/workflow/Signup/s-{u}/attach", error(500, "invocation", "no")),
        ),
    ),
    Scenario(
        "handler_runs_a_workflow_twice",
        "workflows",
        (
            post(
                "/Echo/runs_a_workflow_twice",
                ok(["f@x confirmed with 7", "409: the workflow method was already invoked"]),
                json="r-{u}",
            ),
        ),
    ),
    Scenario(
        "workflow_that_never_ran",
        "workflows",
        (
            get("/restate/workflow/Signup/n-{u}/output", error(404, "ingress")),
            get(
                "/restate/workflow/Signup/n-{u}/attach",
                error(404, "invocation"),
                durable=error(404, "ingress"),
                why="durable refuses at the ingress (no invocation exists to attach to); "
                "Restate creates an attach invocation that finds nothing",
            ),
        ),
    ),
    Scenario(
        "workflow_main_refuses_an_idempotency_key",
        "workflows",
        (
            post(
                "/Signup/k-{u}/run/send",
                error(400, "ingress"),
                json="e@x",
                headers={"idempotency-key": "k"},
            ),
            post("/Signup/run", error(400, "ingress"), json="e@x"),
        ),
    ),
    # ------------------------------------------------------------- cancellation
    Scenario(
        "cancel_a_sleeping_invocation",
        "cancellation",
        (
            post("/Echo/naps/send", accepted(), json=60000),
            Step("PATCH", "{inv}", Expect(202), admin="cancel", until=5),
            get(
                "/restate/invocation/{inv}/attach",
                error(409, "invocation", "cancelled", headers={"x-restate-id": Var("inv")}),
            ),
        ),
    ),
    Scenario(
        "cancel_lets_the_handler_compensate",
        "cancellation",
        (
            post("/Counter/z-{u}/wait_for_signal/send", accepted()),
            post("/Counter/z-{u}/awakeable_id", ok(a_string), until=10),
            Step("PATCH", "{inv}", Expect(202), admin="cancel"),
            get("/restate/invocation/{inv}/attach", error(409, "invocation", "cancelled")),
            post("/Counter/z-{u}/compensated", ok(True)),
        ),
    ),
    Scenario(
        "kill_ends_it_without_compensation",
        "cancellation",
        (
            post("/Counter/q-{u}/wait_for_signal/send", accepted()),
            post("/Counter/q-{u}/awakeable_id", ok(a_string), until=10),
            Step("PATCH", "{inv}", Expect(202), admin="kill"),
            get("/restate/invocation/{inv}/attach", error(409, "invocation", "killed")),
            post("/Counter/q-{u}/compensated", ok(False)),
            post("/Counter/q-{u}/add", ok(1), json=1),  # the key is free again
        ),
    ),
    Scenario(
        "handler_cancels_its_callee",
        "cancellation",
        (
            post("/Echo/cancels_its_callee", ok("cancel sent"), json="h-{u}"),
            post("/Counter/h-{u}/compensated", ok(True), until=10),
        ),
    ),
]

_names = [s.name for s in SCENARIOS]
assert len(_names) == len(set(_names)), "scenario names must be unique"
_ = ABSENT  # re-exported for scenario writers
