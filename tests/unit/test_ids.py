"""Invocation ids (durable.ids): time-ordered, and in creation order within a millisecond."""

from __future__ import annotations

import pytest
from durable.ids import is_invocation_id, new_invocation_id

pytestmark = pytest.mark.timeout(20)


def test_ids_made_in_one_millisecond_still_sort_in_creation_order():
    # thousands of ids per millisecond: a random tail alone would shuffle them, and lists
    # page on (created_at, id)
    ids = [new_invocation_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(is_invocation_id(i) for i in ids[:100])
