"""Unit tests of replay (durable.devtool.replay): today's code against a recorded journal.

Journals are written by hand; handlers are defined inline. Every ``ctx.run`` body
appends to ``calls``, so a test can check that replay never runs one.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from durable import Context, ObjectContext, Service, VirtualObject
from durable.devtool.replay import ReplayRequest, replay
from durable.messages import EntryKind, Failure, JournalEntry, Start

pytestmark = pytest.mark.timeout(10)

K = EntryKind


def entry(i: int, kind: EntryKind, name: str | None = None, **kw) -> JournalEntry:
    kw.setdefault("completed", True)
    return JournalEntry(i, kind, name, **kw)


def start(service: str, handler: str, *entries: JournalEntry, key: str | None = None) -> Start:
    journal = (entry(0, K.INPUT, payload='"x"'), *entries)
    return Start("inv_0000000000000000000000000a", service, handler, key, journal)


async def run(fn, s: Start, timeout: float = 5.0):
    from durable.definitions import handler_of

    return await replay(handler_of(fn), ReplayRequest(1, s, timeout))


calls: list[str] = []


def body(name: str):
    def f() -> str:
        calls.append(name)
        return name

    return f


svc = Service("S")


@svc.handler()
async def ab(ctx: Context, x: str) -> str:
    a = await ctx.run("a", body("a"))
    b = await ctx.run("b", body("b"))
    return a + b


@svc.handler()
async def ba(ctx: Context, x: str) -> str:
    b = await ctx.run("b", body("b"))
    a = await ctx.run("a", body("a"))  # the reordered edit
    return a + b


@svc.handler()
async def only_a(ctx: Context, x: str) -> str:
    return await ctx.run("a", body("a"))


@svc.handler()
async def boom(ctx: Context, x: str) -> str:
    await ctx.run("a", body("a"))
    raise ValueError("bug on recorded data")


@svc.handler()
async def hangs(ctx: Context, x: str) -> str:
    await asyncio.sleep(30)
    return "never"


obj = VirtualObject("O")


@obj.handler()
async def waits(ctx: ObjectContext, x: str) -> str:
    ctx.set("s", 1)
    _id, p = ctx.awakeable()
    return await p


AB = (
    entry(1, K.RUN, "a", result='"a"'),
    entry(2, K.RUN, "b", result='"b"'),
    entry(3, K.OUTPUT, result='"ab"'),
)


@pytest.fixture(autouse=True)
def _clear():
    calls.clear()


async def test_unchanged_code_matches_without_running_bodies():
    r = await run(ab, start("S", "ab", *AB))
    assert r.outcome == "match", r
    assert r.stopped == "the handler returned"
    assert r.entries_checked == 2
    assert calls == []


async def test_reordered_runs_diverge_at_the_first_changed_entry():
    r = await run(ba, start("S", "ab", *AB))
    assert r.outcome == "divergence"
    assert r.index == 1
    assert r.recorded == "run('a')" and r.requested == "run('b')"
    assert r.location is not None and r.location.startswith(__file__)
    line = int(r.location.rsplit(":", 1)[1])
    with open(__file__) as f:
        assert 'ctx.run("b"' in f.read().splitlines()[line - 1]
    assert calls == []


async def test_code_past_the_recorded_journal_stops_before_the_new_step():
    r = await run(ab, start("S", "ab", AB[0]))
    assert r.outcome == "match"
    assert "past the recorded journal (at entry 2)" in r.stopped
    assert calls == []  # the body of "b" did not run


async def test_code_that_ends_early_diverges():
    r = await run(only_a, start("S", "ab", *AB))
    assert r.outcome == "divergence" and r.index == 2
    assert r.requested == "the end of the handler"


async def test_waiting_on_an_incomplete_entry_is_a_match():
    s = start(
        "O",
        "waits",
        entry(1, K.SET_STATE, "s", payload="1"),
        entry(2, K.AWAKEABLE, payload=json.dumps({"id": "awk_x"}), completed=False),
        key="k",
    )
    r = await run(waits, s)
    assert r.outcome == "match" and "waits on entry 2" in r.stopped


async def test_completed_awakeable_feeds_its_recorded_result():
    s = start(
        "O",
        "waits",
        entry(1, K.SET_STATE, "s", payload="1"),
        entry(2, K.AWAKEABLE, payload=json.dumps({"id": "awk_x"}), result='"hi"'),
        entry(3, K.OUTPUT, result='"other"'),
        key="k",
    )
    r = await run(waits, s)
    assert r.outcome == "match"
    assert r.output == '"hi"' and "another output" in r.stopped


async def test_recorded_failure_is_fed_back():
    s = start(
        "S",
        "only_a",
        entry(1, K.RUN, "a", failure=Failure(500, "no")),
        entry(2, K.OUTPUT, failure=Failure(500, "no")),
    )
    r = await run(only_a, s)
    assert r.outcome == "match" and r.stopped == "the handler returned"
    assert calls == []


async def test_an_exception_in_the_code_is_an_error():
    r = await run(boom, start("S", "boom", AB[0]))
    assert r.outcome == "error" and "bug on recorded data" in r.message


async def test_a_handler_that_hangs_times_out():
    r = await run(hangs, start("S", "hangs"), timeout=0.2)
    assert r.outcome == "timeout"


async def test_a_removed_handler_is_an_error():
    r = await replay(None, ReplayRequest(1, start("S", "gone"), 1))
    assert r.outcome == "error" and "not in this app" in r.message


# ---------------------------------------------------------------- a journal pulled from Restate
# Restate journals no awakeable (the pull guesses its place: the latest it can be) and no
# combinator; a replay of a pulled journal settles both as the code asks.
AWK = '{"id": "sign_1x", "guessed": true}'


@svc.handler()
async def awk_early(ctx: Context, x: str) -> str:
    awk_id, fut = ctx.awakeable(type_hint=str)
    await ctx.run("a", body("a"))
    await ctx.run("hand on", body(awk_id))
    got = await fut.with_timeout(timedelta(seconds=60))
    return got + await ctx.run("b", body("b"))


def pulled_journal(b_name: str = "b") -> Start:
    return start(
        "S",
        "awk_early",
        entry(1, K.RUN, "a", result='"a"'),
        entry(2, K.AWAKEABLE, payload=AWK, result='"ok"'),  # guessed: just before hand on
        entry(3, K.RUN, "hand on", result='"sign_1x"'),
        entry(4, K.SLEEP, payload='{"duration_ms": 60000}', completed=False),
        entry(5, K.RUN, b_name, result='"b"'),
        entry(6, K.OUTPUT, result='"okb"'),
    )


async def run_pulled(fn, s: Start):
    from durable.definitions import handler_of

    return await replay(handler_of(fn), ReplayRequest(1, s, 5.0, pulled=True))


async def test_a_pulled_journal_settles_a_guessed_awakeable_and_makes_the_combinator():
    calls.clear()
    r = await run_pulled(awk_early, pulled_journal())
    assert (r.outcome, r.stopped) == ("match", "the handler returned"), r
    assert calls == []
    assert [e.kind for e in r.journal] == [
        K.INPUT, K.AWAKEABLE, K.RUN, K.RUN, K.SLEEP, K.COMBINATOR, K.RUN, K.OUTPUT
    ]  # fmt: skip
    assert [e.index for e in r.journal] == list(range(8))
    assert r.stored == (0, 2, 1, 3, 4, None, 5, 6)
    assert json.loads(r.journal[5].result) == [1]  # the awakeable completed first
    assert r.entries_checked == 5  # the stored entries 1-5 (the made combinator not counted)


async def test_a_pulled_journal_ending_in_a_combinator_stops_there():
    s = start(
        "S",
        "awk_early",
        entry(1, K.RUN, "a", result='"a"'),
        entry(2, K.AWAKEABLE, payload=AWK, completed=False),
        entry(3, K.RUN, "hand on", result='"sign_1x"'),
        entry(4, K.SLEEP, payload='{"duration_ms": 60000}', completed=False),
    )
    r = await run_pulled(awk_early, s)
    assert r.outcome == "match", r
    assert r.stopped == "the handler went past the recorded journal (at entry 5)", r
    assert r.stored == (0, 2, 1, 3, 4)  # nothing made: the combinator is past the end
    assert r.entries_checked == 4


async def test_a_pulled_journal_still_diverges_at_the_stored_entry_with_file_and_line():
    r = await run_pulled(awk_early, pulled_journal(b_name="c"))
    assert r.outcome == "divergence", r
    assert r.index == 5  # the stored index (the replay's own numbering is 6)
    assert "run('c')" in (r.recorded or "") and "run('b')" in (r.requested or "")
    line = _line_of('return got + await ctx.run("b"')
    assert r.location and r.location.endswith(f"test_replay.py:{line}"), r.location
    assert "entry 5" in r.message


async def test_without_the_pulled_flag_a_guessed_awakeable_still_diverges():
    r = await run(awk_early, pulled_journal())
    assert (r.outcome, r.index) == ("divergence", 1), r


def _line_of(text: str) -> int:
    lines = Path(__file__).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line and "_line_of" not in line)
