"""Every scenario of scenarios.py against a real Restate 1.7 (a restate-sdk app, and the
``import durable`` twin served by ``durable serve``) and against ``durable dev`` (the app,
and its twin).

A failure names the scenario, the side, the step and both the answer and what was
expected. A scenario step where durable deliberately differs carries durable's answer
and its reason; the Ingress section of docs/restate-compat.md lists the same steps, so
neither can change without the other.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.conformance.harness import Side, play
from tests.conformance.scenarios import SCENARIOS

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "restate-compat.md"
DEPLOY_DOC = DOC.parent / "deploy.md"
IDS = [s.name for s in SCENARIOS]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_on_restate(scenario, restate_side: Side) -> None:
    play(scenario, restate_side, uuid.uuid4().hex[:8])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_on_durable(scenario, durable_side: Side) -> None:
    play(scenario, durable_side, uuid.uuid4().hex[:8])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_on_serve(scenario, serve_side: Side) -> None:
    """The twin served by ``durable serve`` to a real Restate: Restate's answers, with no
    difference of its own (one would be a bug of the adapter)."""
    play(scenario, serve_side, uuid.uuid4().hex[:8])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_on_durable_twin(scenario, twin_side: Side) -> None:
    """The same app written with ``import durable`` answers as app.py does."""
    play(scenario, twin_side, uuid.uuid4().hex[:8])


def test_the_twin_is_app_py_with_import_durable() -> None:
    """app_durable.py's code is app.py's, with ``durable`` for ``restate``: a handler
    changed in one is changed in the other."""
    here = Path(__file__).parent

    def code(name: str) -> str:
        text = (here / name).read_text()
        return text[text.index("ATTEMPTS: dict") :]

    assert code("app_durable.py") == code("app.py").replace("restate.", "durable.")


def test_enough_scenarios_cover_every_topic() -> None:
    topics = {s.topic for s in SCENARIOS}
    assert len(SCENARIOS) >= 30
    assert topics >= {
        "services",
        "objects",
        "workflows",
        "awakeables",
        "idempotency",
        "delayed sends",
        "errors",
        "cancellation",
    }


def test_every_difference_is_documented_and_every_documented_one_is_tested() -> None:
    """docs/restate-compat.md's Ingress table names each scenario with a difference in a
    ``conformance: NAME`` cell; each such step gives its reason."""
    text = DOC.read_text()
    ingress = text.split("## Ingress", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"conformance: `(\w+)`", ingress))
    differing = {s.name for s in SCENARIOS if s.differences}
    assert differing == documented, (
        f"differences not in docs/restate-compat.md: {sorted(differing - documented)}; "
        f"documented but no scenario differs: {sorted(documented - differing)}"
    )
    for s in SCENARIOS:
        for step in s.differences:
            assert step.why, f"{s.name}: a difference needs its reason (why=)"


def test_every_serve_difference_is_durable_devs_status_and_documented() -> None:
    """Where the serve side does not answer as Restate does, it answers durable dev's
    status (durable's own code answers there); docs/deploy.md's "Answers on Restate"
    table names each such scenario in a ``conformance: NAME`` cell."""
    text = DEPLOY_DOC.read_text()
    section = text.split("## Answers on Restate", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"conformance: `(\w+)`", section))
    differing = {s.name for s in SCENARIOS if s.serve_differences}
    assert differing == documented, (
        f"serve differences not in docs/deploy.md: {sorted(differing - documented)}; "
        f"documented but no scenario differs: {sorted(documented - differing)}"
    )
    for s in SCENARIOS:
        for step in s.serve_differences:
            assert step.serve_why, f"{s.name}: a serve difference needs its reason"
            assert step.durable is not None and step.serve.status == step.durable.status, (
                f"{s.name}: the serve side differs from Restate and from durable dev"
            )
