"""The soak's check for step bodies run again after their run was journaled."""

from __future__ import annotations

from bench.soak import _step_reruns


def test_a_body_run_again_after_the_handler_got_past_it_is_a_committed_rerun(tmp_path):
    f = tmp_path / "steps.txt"
    f.write_text("1,0\n1,0,passed\n1,0\n")
    assert _step_reruns(f) == (1, 0)


def test_a_body_run_again_after_a_later_step_ran_is_a_committed_rerun(tmp_path):
    f = tmp_path / "steps.txt"
    f.write_text("2,0\n2,1\n2,0\n")  # step 1 ran: step 0 had been committed
    assert _step_reruns(f) == (1, 0)


def test_a_body_run_again_before_its_step_was_committed_is_allowed(tmp_path):
    f = tmp_path / "steps.txt"
    f.write_text("3,0\n3,0\n3,0,passed\n3,1\n3,1,passed\n4,0\n")
    assert _step_reruns(f) == (0, 1)
