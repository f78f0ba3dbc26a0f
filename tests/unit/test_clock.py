"""Timestamps as the store keeps them (durable.devtool.clock)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from durable.devtool.clock import from_dt, to_dt

pytestmark = pytest.mark.timeout(20)


def test_to_dt_is_naive_utc_to_the_microsecond_and_round_trips():
    rng = random.Random(7)
    for _ in range(20_000):
        ts = round(rng.uniform(0, 4e9), rng.choice([0, 3, 6, 7, 9]))
        dt = to_dt(ts)
        assert dt.tzinfo is None
        assert dt == datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)
        assert abs(from_dt(dt) - ts) <= 1e-6
