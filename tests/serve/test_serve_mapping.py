"""`durable serve`'s mapping of durable definitions to restate-sdk's, its refusals, and the
command's edges (no extra installed, a bad app, a refused option, --help)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import durable
import pytest
from durable import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    RetryPolicy,
    Service,
    TerminalError,
    VirtualObject,
    Workflow,
    WorkflowContext,
)
from durable.devtool.serve.adapter import FOREVER, build, refusals, retry_policy
from durable.devtool.serve.futures import to_durable, to_restate
from durable.exceptions import CancelledError, RetryableError
from restate.discovery import compute_discovery_json
from restate.endpoint import Endpoint
from restate.exceptions import RetryableError as RRetryableError
from restate.exceptions import TerminalError as RTerminalError

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


def _defs() -> dict[str, durable.definitions.ServiceDef]:
    svc = Service(
        "Greeter",
        description="greets",
        retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=30), max_attempts=4),
        inactivity_timeout=timedelta(seconds=90),
    )

    @svc.handler(retry_policy=RetryPolicy(max_attempts=None), idempotency_retention=timedelta(1))
    async def greet(ctx: Context, name: str) -> str:
        return name

    obj = VirtualObject("Cart", enable_lazy_state=True)

    @obj.handler()
    async def put(ctx: ObjectContext, n: int) -> None:
        pass

    @obj.handler(kind="shared")
    async def peek(ctx: ObjectSharedContext) -> list[int]:
        return []

    wf = Workflow("Signup")

    @wf.main(workflow_retention=timedelta(days=2))
    async def run(ctx: WorkflowContext, email: str) -> bool:
        return True

    @wf.handler()
    async def poke(ctx: durable.WorkflowSharedContext) -> None:
        pass

    return {s.name: s for s in (svc, obj, wf)}


def test_names_kinds_policies_and_options() -> None:
    greeter, cart, signup = build(_defs())
    assert greeter.service_tag.kind == "service" and greeter.name == "Greeter"
    assert greeter.service_tag.description == "greets"
    assert greeter.inactivity_timeout == timedelta(seconds=90)
    p = greeter.invocation_retry_policy
    assert (p.initial_interval, p.max_attempts, p.exponentiation_factor) == (
        timedelta(milliseconds=30),
        4,
        2.0,
    )
    assert p.max_interval == timedelta(seconds=10) and p.on_max_attempts == "pause"
    greet = greeter.handlers["greet"]
    assert greet.kind is None and greet.invocation_retry_policy.max_attempts == FOREVER
    assert greet.idempotency_retention == timedelta(1)
    assert cart.service_tag.kind == "object" and cart.enable_lazy_state is True
    assert cart.invocation_retry_policy is None  # unset: the cluster's default
    assert {n: h.kind for n, h in cart.handlers.items()} == {"put": "exclusive", "peek": "shared"}
    assert signup.service_tag.kind == "workflow"
    assert signup.handlers["run"].kind == "workflow"
    assert signup.handlers["run"].workflow_retention == timedelta(days=2)
    assert signup.handlers["poke"].kind == "shared"


def test_discovery_has_durable_schemas_and_void_outputs() -> None:
    ep = Endpoint()
    for s in build(_defs()):
        ep.bind(s)
    doc = json.loads(compute_discovery_json(ep, 4, "bidi"))
    services = {s["name"]: s for s in doc["services"]}
    greet = services["Greeter"]["handlers"][0]
    assert greet["input"]["jsonSchema"] == {"type": "string"}
    assert greet["output"]["jsonSchema"] == {"type": "string"}
    assert greet["retryPolicyMaxAttempts"] == FOREVER
    assert services["Greeter"]["retryPolicyInitialInterval"] == 30
    handlers = {h["name"]: h for h in services["Cart"]["handlers"]}
    assert handlers["put"]["input"]["jsonSchema"] == {"type": "integer"}
    assert "jsonSchema" not in handlers["put"]["output"]  # -> None: no output
    assert handlers["peek"]["input"] == {}  # no input parameter
    assert handlers["peek"]["output"]["jsonSchema"]["type"] == "array"
    run = {h["name"]: h for h in services["Signup"]["handlers"]}["run"]
    assert run["ty"] == "WORKFLOW" and run["workflowCompletionRetention"] == 2 * 86400 * 1000


def test_retry_policy_mapping() -> None:
    assert retry_policy(None) is None
    p = retry_policy(RetryPolicy(timedelta(seconds=1), 3.0, timedelta(minutes=1), 7))
    assert p is not None
    assert (p.initial_interval, p.exponentiation_factor, p.max_interval, p.max_attempts) == (
        timedelta(seconds=1),
        3.0,
        timedelta(minutes=1),
        7,
    )


def test_options_restate_has_no_parameter_for_are_refused_by_name() -> None:
    svc = Service("Plain", enable_lazy_state=True)

    @svc.handler(state_preload=True)
    async def h(ctx: Context) -> None:
        pass

    wf = Workflow("Flow")

    @wf.main(idempotency_retention=timedelta(hours=1))
    async def main(ctx: WorkflowContext) -> None:
        pass

    problems = refusals({"Plain": svc, "Flow": wf})
    assert len(problems) == 3
    assert problems[0].startswith("Service('Plain'): enable_lazy_state= has no equivalent")
    assert (
        "Plain/h: state_preload= has no equivalent on a Restate Service handler; remove it"
        in problems
    )
    assert (
        "Flow/main: idempotency_retention= has no equivalent on a Restate Workflow main handler; remove it"
        in problems
    )
    with pytest.raises(durable.devtool.errors.AppLoadError, match="cannot carry these over"):
        build({"Plain": svc})
    assert refusals(_defs()) == []


def test_errors_both_ways() -> None:
    e = to_restate(TerminalError("nope", 404, {"a": "b"}))
    assert isinstance(e, RTerminalError) and (e.message, e.status_code, e.metadata) == (
        "nope",
        404,
        {"a": "b"},
    )
    r = to_restate(RetryableError("later", retry_after=timedelta(seconds=2)))
    assert isinstance(r, RRetryableError) and r.retry_after == timedelta(seconds=2)
    plain = ValueError("x")
    assert to_restate(plain) is plain
    back = to_durable(RTerminalError("gone", 410))
    assert type(back) is TerminalError and (back.message, back.status_code) == ("gone", 410)
    assert isinstance(to_durable(RTerminalError("cancelled", 409)), CancelledError)


def test_import_durable_loads_no_restate_sdk() -> None:
    code = "import durable, durable.combinators, durable.devtool.cli, sys; print('restate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# -- the command


def _serve(tmp_path: Path, *args: str, pre: str = "") -> subprocess.CompletedProcess[str]:
    code = pre + "from durable.devtool.cli import main; import sys; sys.argv[0] = 'durable'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, "serve", *args, "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_without_the_extra_it_names_it(tmp_path: Path) -> None:
    # `import restate` fails as it does when restate-sdk is not installed
    hide = "import sys; sys.modules['restate'] = None\n"
    r = _serve(tmp_path, str(ROOT / "devtool/example/app.py"), pre=hide)
    assert r.returncode == 1
    assert "pip install 'durable[restate]'" in r.stderr


def test_a_missing_app_file(tmp_path: Path) -> None:
    r = _serve(tmp_path, "nope.py")
    assert r.returncode == 1
    assert "app file nope.py does not exist" in r.stderr


def test_an_app_that_fails_to_import_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import durable\n\nx = 1 / 0\n")
    r = _serve(tmp_path, "broken.py")
    assert r.returncode == 1
    assert "broken.py, line 3: ZeroDivisionError" in r.stderr


def test_a_restate_sdk_app_is_told_to_run_as_one(tmp_path: Path) -> None:
    (tmp_path / "rapp.py").write_text(
        textwrap.dedent(
            """
            import restate
            svc = restate.Service("R")
            @svc.handler()
            async def h(ctx: restate.Context) -> str:
                return "r"
            app = restate.app([svc])
            """
        )
    )
    r = _serve(tmp_path, "rapp.py")
    assert r.returncode == 1
    assert "is a restate-sdk app" in r.stderr and "hypercorn" in r.stderr


def test_an_app_mixing_restate_sdk_services_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mixed.py").write_text(
        textwrap.dedent(
            """
            import durable, restate
            d = durable.Service("D")
            @d.handler()
            async def h(ctx: durable.Context) -> str:
                return "d"
            r = restate.Service("R")
            """
        )
    )
    r = _serve(tmp_path, "mixed.py")
    assert r.returncode == 1
    assert "also defines restate-sdk services (R)" in r.stderr


def test_a_refused_option_stops_it_before_serving(tmp_path: Path) -> None:
    (tmp_path / "lazy.py").write_text(
        textwrap.dedent(
            """
            import durable
            svc = durable.Service("Lazy", enable_lazy_state=True)
            @svc.handler()
            async def h(ctx: durable.Context) -> str:
                return "x"
            """
        )
    )
    r = _serve(tmp_path, "lazy.py")
    assert r.returncode == 1
    assert "nothing was served" in r.stderr
    assert "Service('Lazy'): enable_lazy_state= has no equivalent" in r.stderr
    assert "a Restate deployment at" not in r.stdout


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code = "from durable.devtool.cli import main; main()"
        app = str(ROOT / "devtool/example/app.py")
        r = subprocess.run(
            [sys.executable, "-c", code, "serve", app, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in r.stderr
    assert "a Restate deployment at" not in r.stdout  # nothing claimed before it is bound


def test_help() -> None:
    from durable.devtool.cli import app
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, ["serve", "--help"])
    assert r.exit_code == 0
    for word in ("--host", "--port", "--http1", "Restate"):
        assert word in r.output


def test_the_logger_is_quiet_while_restate_replays(caplog: pytest.LogCaptureFixture) -> None:
    from durable.devtool.serve.futures import Waits
    from durable.logging import current_executor
    from restate.server_context import restate_context_is_replaying

    log = durable.getLogger("serve_replay_test")
    token = current_executor.set(Waits(None))
    try:
        with caplog.at_level("INFO", logger="serve_replay_test"):
            flag = restate_context_is_replaying.set(True)
            log.info("during replay")
            restate_context_is_replaying.reset(flag)
            log.info("live")
    finally:
        current_executor.reset(token)
    assert [r.getMessage() for r in caplog.records] == ["live"]


def test_serdes_get_what_restate_carries() -> None:
    from durable.devtool.serve.futures import decode, encode

    assert decode(durable.serde.BytesSerde(), b"\xff\x00") == b"\xff\x00"  # not text: as given
    assert encode(durable.serde.BytesSerde(), b"\xff") == b"\xff"
    assert decode(durable.serde.JsonSerde(int), b"42") == 42
    assert decode(durable.serde.JsonSerde(), None) is None
    assert encode(durable.serde.JsonSerde(), {"a": 1}) == b'{"a":1}'

    class Upper:  # a restate-style serde: bytes both ways
        def serialize(self, v: str) -> bytes:
            return v.upper().encode()

        def deserialize(self, b: bytes) -> str:
            return b.decode().lower()

    assert encode(Upper(), "ab") == b"AB" and decode(Upper(), b"AB") == "ab"
