"""Which actions each status allows (durable.devtool.lifecycle.allowed_actions), and
that the admin actions refuse exactly the others, with a message that says why."""

from __future__ import annotations

import pytest
from durable.devtool.lifecycle import ACTIONS, TERMINAL, Status, allowed_actions, refusal

INV = "inv_1allowed00000000000000001"

EXPECTED = {
    "pending": ["cancel", "kill"],
    "scheduled": ["cancel", "kill"],
    "ready": ["pause", "cancel", "kill"],
    "running": ["pause", "cancel", "kill"],
    "suspended": ["pause", "cancel", "kill"],
    "backing-off": ["pause", "resume", "cancel", "kill"],
    "paused": ["resume", "cancel", "kill"],
    "completed": ["purge"],
    "failed": ["purge"],
    "killed": ["purge"],
    "cancelled": ["purge"],
}


def test_every_status_has_its_actions_in_the_order_offered():
    assert {s.value for s in Status} == set(EXPECTED)
    for status, actions in EXPECTED.items():
        assert allowed_actions(status) == actions, status


def test_terminal_statuses_compare_equal_to_their_names():
    assert {"completed", "failed", "killed", "cancelled"} == {s for s in Status if s in TERMINAL}
    assert "completed" in TERMINAL and "running" not in TERMINAL


@pytest.mark.parametrize("status", [s.value for s in Status])
@pytest.mark.parametrize("action", ACTIONS)
def test_refusal_matches_the_table(status: str, action: str):
    why = refusal(action, status, INV)
    if action in allowed_actions(status) or (action, status) == ("pause", "paused"):
        assert why is None
    else:
        assert why is not None and why.startswith(f"invocation {INV} is {status}: ")


@pytest.mark.parametrize(
    ("action", "status", "says"),
    [
        ("purge", "running", "only finished invocations can be purged; cancel or kill it first"),
        ("kill", "completed", "there is nothing to kill"),
        ("resume", "suspended", "only paused or backing-off invocations can be resumed"),
        ("pause", "pending", "it has not started, so there is nothing to pause"),
    ],
)
def test_refusals_say_what_to_do(action: str, status: str, says: str):
    assert says in (refusal(action, status, INV) or "")
