"""`durable deploy` against a real restate-server 1.7, with real-restate-sdk apps under
hypercorn (no `durable serve` needed: registration is the same for any deployment).

Each test registers its own service names, so the order of the tests does not matter.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from durable.devtool.cli import app
from typer.testing import CliRunner

from tests.conftest import free_port
from tests.restate_server import AppProcess, RestateServer, hypercorn_app, restate_fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

runner = CliRunner()

APP = """
import restate
from restate import Context, ObjectContext, ObjectSharedContext, Service, VirtualObject

greeter = {greeter_kind}("{prefix}Greeter")


@greeter.handler()
async def greet(ctx, name: str) -> str:
    return f"hello {{name}}"


counter = VirtualObject("{prefix}Counter")


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> int:
    return delta


@counter.handler(kind="shared")
async def total(ctx: ObjectSharedContext) -> int:
    return 0


app = restate.app([greeter, counter])
"""


@pytest.fixture(scope="module")
def restate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestateServer]:
    yield from restate_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AppProcess]]:
    """Three apps: ``A`` and ``B`` (a Greeter service and a Counter object each, named
    apart) and ``B2``, where B's Greeter has become an object (a breaking change)."""
    d = tmp_path_factory.mktemp("deploy-apps")
    apps = {"A": ("A", "Service"), "B": ("B", "Service"), "B2": ("B", "VirtualObject")}
    procs: dict[str, AppProcess] = {}
    try:
        for name, (prefix, kind) in apps.items():
            (d / f"app{name}.py").write_text(
                textwrap.dedent(APP.format(prefix=prefix, greeter_kind=kind))
            )
            procs[name] = hypercorn_app(d, f"app{name}:app").start()
        yield procs
    finally:
        for p in procs.values():
            p.stop()


def durable(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def ok(*args: object) -> str:
    r = durable(*args)
    assert r.exit_code == 0, (args, r.stdout, r.stderr)
    return r.stdout


def refused(*args: object, text: str) -> str:
    r = durable(*args)
    assert r.exit_code == 1, (args, r.exit_code, r.stdout, r.stderr)
    said = " ".join(r.stderr.split())
    assert said.startswith("error: ") and text in said, (args, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    return said


def known_services(restate: RestateServer) -> dict[str, str]:
    r = httpx.get(f"{restate.admin_url}/services", timeout=10)
    return {s["name"]: s["ty"] for s in r.json()["services"]}


def test_registers_and_prints_the_services_restate_discovered(restate, deployments) -> None:
    url = deployments["A"].url
    text = ok("deploy", url, "--admin", restate.admin_url)
    lines = [line.split() for line in text.splitlines()]
    assert text.startswith(f"registered {url} with Restate at {restate.admin_url}")
    assert lines[1][:1] == ["deployment:"] and lines[1][1].startswith("dp_")
    assert ["SERVICE", "KIND", "HANDLER", "HANDLER", "KIND"] in lines
    assert ["ACounter", "object", "add", "exclusive"] in lines
    assert ["total", "shared"] in lines
    assert ["AGreeter", "service", "greet", "service"] in lines
    example = (
        f"call it through Restate's ingress: curl -X POST {restate.ingress_url}/ACounter/KEY/add"
    )
    assert example in text
    expected = {"ACounter": "VirtualObject", "AGreeter": "Service"}
    assert expected.items() <= known_services(restate).items()
    # Restate now routes to the deployment
    r = httpx.post(f"{restate.ingress_url}/AGreeter/greet", json="Ann", timeout=30)
    assert (r.status_code, r.json()) == (200, "hello Ann")

    # The same URL again: Restate keeps what it discovered; the command says so.
    again = ok("deploy", url + "/", "--admin", restate.admin_url + "/")
    assert again.startswith(f"already registered {url} ")
    assert "run again with --force to re-discover" in " ".join(again.split())
    forced = ok("deploy", url, "--admin", restate.admin_url, "--force")
    assert forced.startswith(f"re-discovered {url} ") and "--force" not in forced


def test_json_for_scripts(restate, deployments) -> None:
    url = deployments["B"].url
    data = json.loads(ok("deploy", url, "--admin", restate.admin_url, "--json"))
    assert data["deployment_id"].startswith("dp_")
    assert data == {
        "deployment_id": data["deployment_id"],
        "uri": url,
        "created": True,
        "ingress": restate.ingress_url,
        "services": [
            {
                "name": "BCounter",
                "kind": "object",
                "handlers": [
                    {"name": "add", "kind": "exclusive"},
                    {"name": "total", "kind": "shared"},
                ],
            },
            {
                "name": "BGreeter",
                "kind": "service",
                "handlers": [{"name": "greet", "kind": "service"}],
            },
        ],
    }
    r = httpx.get(f"{restate.admin_url}/deployments/{data['deployment_id']}", timeout=10)
    assert r.status_code == 200 and r.json()["uri"].rstrip("/") == url


def test_a_breaking_change_is_refused_until_forced(restate, deployments) -> None:
    ok("deploy", deployments["B"].url, "--admin", restate.admin_url)
    changed = deployments["B2"].url
    said = refused("deploy", changed, "--admin", restate.admin_url, text="a breaking change")
    assert "changing the service type" in said  # Restate's own reason
    assert "run again with --force" in said
    assert known_services(restate)["BGreeter"] == "Service"  # nothing changed

    data = json.loads(ok("deploy", changed, "--admin", restate.admin_url, "--force", "--json"))
    assert data["created"] is True
    assert {s["name"]: s["kind"] for s in data["services"]}["BGreeter"] == "object"
    assert known_services(restate)["BGreeter"] == "VirtualObject"


def test_http1_registers_with_use_http_11(restate, tmp_path: Path) -> None:
    (tmp_path / "appC.py").write_text(
        textwrap.dedent(APP.format(prefix="C", greeter_kind="Service"))
    )
    proc = hypercorn_app(tmp_path, "appC:app").start()
    try:
        data = json.loads(ok("deploy", proc.url, "--admin", restate.admin_url, "--http1", "--json"))
        r = httpx.get(f"{restate.admin_url}/deployments/{data['deployment_id']}", timeout=10)
        assert r.json()["http_version"] == "HTTP/1.1", r.json()
        r = httpx.post(f"{restate.ingress_url}/CGreeter/greet", json="Bo", timeout=30)
        assert (r.status_code, r.json()) == (200, "hello Bo")
    finally:
        proc.stop()


def test_an_unreachable_deployment(restate) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    said = refused(
        "deploy", nobody, "--admin", restate.admin_url, text="could not discover the deployment"
    )
    assert nobody in said and "Connection refused" in said
    assert "`durable serve` runs there" in said
    refused("deploy", nobody, "--admin", restate.admin_url, "--http1", text="Connection refused")


def test_an_unreachable_admin_api(deployments) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    said = refused(
        "deploy", deployments["A"].url, "--admin", nobody,
        text=f"cannot reach Restate's admin API at {nobody}",
    )  # fmt: skip
    assert "is restate-server running there?" in said


def test_an_admin_url_that_is_not_restate(deployments) -> None:
    # The deployment itself answers HTTP, but not as Restate's admin API.
    other = deployments["A"].url
    said = refused(
        "deploy", other, "--admin", other, text=f"{other} answered 404 to POST /deployments"
    )
    assert "give Restate's admin URL" in said


def test_restates_ingress_given_as_the_admin_url(restate, deployments) -> None:
    said = refused(
        "deploy", deployments["A"].url, "--admin", restate.ingress_url,
        text="to POST /deployments, not as Restate's admin API does",
    )  # fmt: skip
    assert "port 9070 by default" in said


@pytest.mark.parametrize(
    "url, admin, text",
    [
        ("app-host:9080", "http://127.0.0.1:9070", "URL must be an http:// or https:// URL"),
        ("http://", "http://127.0.0.1:9070", "URL must be an http:// or https:// URL"),
        ("ftp://app-host:9080", "http://127.0.0.1:9070", "URL must be an http:// or https://"),
        ("http://app-host:99999", "http://127.0.0.1:9070", "has a bad port"),
        ("http://app-host:9080?x=1", "http://127.0.0.1:9070", "no query or fragment"),
        ("http://app-host:9080", "restate:9070", "--admin must be an http:// or https://"),
    ],
)
def test_a_bad_url_is_refused_before_any_request(url: str, admin: str, text: str) -> None:
    refused("deploy", url, "--admin", admin, text=text)


def test_admin_comes_from_the_environment_too(restate, deployments) -> None:
    r = runner.invoke(
        app,
        ["deploy", deployments["A"].url, "--json"],
        env={"DURABLE_RESTATE_URL": restate.admin_url},
    )
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["uri"] == deployments["A"].url
    r = runner.invoke(app, ["deploy", deployments["A"].url], env={"DURABLE_RESTATE_URL": ""})
    assert r.exit_code == 2 and "--admin" in r.stderr
