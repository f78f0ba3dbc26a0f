"""The committed-state cache (durable.devtool.store.statecache) and its use by the Store."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from durable.devtool.store import Store, queries
from durable.devtool.store.ops import ClearAllState, SetState
from durable.devtool.store.statecache import StateCache

pytestmark = pytest.mark.timeout(20)

K = ("Counter", "k")


def test_miss_then_read_is_kept_and_commits_update_it():
    c = StateCache()
    assert c.get(K) is None
    token = c.begin_read(K)
    c.end_read(K, token, {"a": "1"})
    assert c.get(K) == {"a": "1"}
    c.committed({K: (False, {"b": "2", "a": None})})
    assert c.get(K) == {"b": "2"}
    c.committed({K: (True, {"c": "3"})})
    assert c.get(K) == {"c": "3"}
    got = c.get(K)
    assert got is not None
    got["x"] = "mutated"  # callers get a copy
    assert c.get(K) == {"c": "3"}


def test_a_read_raced_by_a_commit_is_not_kept():
    c = StateCache()
    token = c.begin_read(K)
    c.committed({K: (False, {"a": "2"})})  # committed while the read ran
    c.end_read(K, token, {"a": "1"})  # the read may predate the commit
    assert c.get(K) is None
    token = c.begin_read(K)
    c.end_read(K, token, {"a": "2"})
    assert c.get(K) == {"a": "2"}


def test_concurrent_reads_are_tracked_one_by_one():
    c = StateCache()
    t1, t2 = c.begin_read(K), c.begin_read(K)
    c.end_read(K, t1, {"a": "1"})
    c.committed({K: (False, {"a": "2"})})
    c.end_read(K, t2, {"a": "1"})  # stale: not kept
    assert c.get(K) == {"a": "2"}  # t1's result was kept, then updated by the commit


def test_commits_to_other_keys_and_failed_reads_change_nothing():
    c = StateCache()
    token = c.begin_read(K)
    c.committed({("Counter", "other"): (False, {"a": "9"})})
    c.end_read(K, token, None)  # the read failed
    assert c.get(K) is None and c.get(("Counter", "other")) is None


def test_least_recently_used_keys_are_dropped():
    c = StateCache(max_keys=2)
    for name in ("a", "b"):
        c.end_read(("S", name), c.begin_read(("S", name)), {})
    assert c.get(("S", "a")) == {}  # a is now the most recently used
    c.end_read(("S", "c"), c.begin_read(("S", "c")), {})
    assert c.get(("S", "b")) is None and c.get(("S", "a")) == {} and c.get(("S", "c")) == {}


def test_the_cache_is_bounded_in_bytes_and_skips_huge_states():
    c = StateCache(max_bytes=1600)  # a key over 100 bytes is not kept
    c.end_read(("S", "big"), c.begin_read(("S", "big")), {"v": "x" * 200})
    assert c.get(("S", "big")) is None
    for i in range(20):
        c.end_read(("S", f"k{i}"), c.begin_read(("S", f"k{i}")), {"v": "x" * 90})
    assert c.get(("S", "k0")) is None and c.get(("S", "k19")) is not None
    assert sum(c.get(("S", f"k{i}")) is not None for i in range(20)) == 1600 // 91
    c.committed({("S", "k19"): (False, {"w": "y" * 200})})  # grew too big: dropped
    assert c.get(("S", "k19")) is None


async def test_store_state_reads_through_the_cache_and_sees_only_committed_writes():
    store = await asyncio.to_thread(Store.open, ":memory:")
    try:
        at = datetime(2030, 1, 1)
        assert await store.state("Counter", "k") == {}
        await store.write([SetState("Counter", "k", "count", "1", "inv_x", 1, at)])
        assert store.state_cache.get(K) == {"count": "1"}  # updated by the commit
        await store.write(
            [
                SetState("Counter", "k", "a", "2", "inv_x", 2, at),
                ClearAllState("Counter", "k", "inv_x", 3, at),
                SetState("Counter", "k", "b", "3", "inv_x", 4, at),
            ]
        )
        assert await store.state("Counter", "k") == {"b": "3"}
        assert await store.read(queries.state, "Counter", "k") == {"b": "3"}
        history = await store.read(queries.state_history, "Counter", "k")
        assert [(h.op, h.name, h.entry_index) for h in history] == [
            ("set", "count", 1),
            ("set", "a", 2),
            ("clear_all", None, 3),
            ("set", "b", 4),
        ]
        assert store.state_cache.hits >= 1
    finally:
        await asyncio.to_thread(store.close)
