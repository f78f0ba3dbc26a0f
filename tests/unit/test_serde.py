"""The serde's storability rules: what it writes, or accepts from outside, DuckDB stores.

Plus the small parsers of the HTTP edges that lean on it (durations, times, integers,
the origin rule, SQL limits), tested without a runtime.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from durable import serde
from durable.dashboard._forms import input_form, value_from_form
from durable.devtool.admin.filters import int_param, parse_time, seconds_param
from durable.devtool.errors import BadRequest
from durable.devtool.hostguard import origin_verdict
from durable.devtool.parsing import MAX_DELAY_S, parse_duration
from durable.devtool.store import readonly
from durable.exceptions import TerminalError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


# ---------------------------------------------------------------------------- parse_strict
@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('"\\ud800"', "surrogate"),
        ('{"\\udfff": 1}', "surrogate"),
        ('["ok", {"a": "x\\udbff"}]', "surrogate"),
        ("NaN", "NaN is not JSON"),
        ("[Infinity]", "Infinity is not JSON"),
        ('{"a": -Infinity}', "Infinity is not JSON"),
        ("1e400", "too large"),
        ("[-1e400]", "too large"),
        (nested(serde.MAX_DEPTH + 1), "levels deep"),
        (nested(1000), "levels deep"),
        (nested(100_000), "levels deep"),
        ('{"a":' * 200 + "1" + "}" * 200, "levels deep"),
    ],
)
def test_parse_strict_refuses_what_cannot_be_stored(text: str, why: str) -> None:
    with pytest.raises(serde.UnstorableValue, match=why) as got:
        serde.parse_strict(text)
    assert got.value.status_code == 400
    assert isinstance(got.value, ValueError) and isinstance(got.value, TerminalError)


@pytest.mark.parametrize(
    "text",
    [
        '"\\ud83d\\ude00"',  # a surrogate pair is one character
        '"\\\\ud800"',  # an escaped backslash, then the letters ud800
        '"é ü 😀"',
        nested(serde.MAX_DEPTH),
        '"' + "[" * 500 + '"',  # brackets in a string are not nesting
        "[" + ",".join(["[1]"] * 1000) + "]",  # many brackets, shallow
        "1e308",
        "1e-400",
        "12345678901234567890123456789",
    ],
)
def test_parse_strict_accepts_ordinary_json(text: str) -> None:
    assert serde.parse_strict(text) == json.loads(text)


def test_parse_strict_says_invalid_json_is_a_value_error() -> None:
    for text in ("{", "[1,]", "'x'", "\ufeff1", "1 2"):
        with pytest.raises(ValueError):
            serde.parse_strict(text)


# ---------------------------------------------------------------------------- serialize
@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        [float("inf")],
        {"a": -math.inf},
        "\ud800",
        ["ok", {"\udc00": 1}],
        json.loads(nested(serde.MAX_DEPTH + 1)),
    ],
)
def test_serialize_refuses_what_cannot_be_stored(value: Any) -> None:
    with pytest.raises(serde.UnstorableValue) as got:
        serde.serialize(value)
    assert got.value.status_code == 500  # a handler made it: the attempt fails, terminally


def test_serialize_refuses_a_self_reference_and_huge_depth() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError):
        serde.serialize(loop)
    deep: list[Any] = []
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(serde.UnstorableValue, match="levels deep"):
        serde.serialize(deep)


def test_serialize_keeps_unicode_and_other_errors() -> None:
    assert serde.serialize({"k": "é😀"}) == '{"k":"é😀"}'
    with pytest.raises(TypeError):
        serde.serialize(object())


# A JSON-like value of anything Python's json can write: every string (lone surrogates
# too), every float (NaN, infinities), nested lists and objects.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def _storable(text: str) -> None:
    text.encode("utf-8")  # what DuckDB needs
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} written"))


@FAST
@given(json_values)
def test_serialize_writes_only_storable_text_or_refuses(value: Any) -> None:
    try:
        text = serde.serialize(value)
    except serde.UnstorableValue:
        return
    _storable(text)
    assert serde.parse_strict(text) == json.loads(text)


@FAST
@given(st.text(alphabet=st.sampled_from('[]{}"\\u d8 0f NaIyte1.,:-+ ')) | st.text())
def test_parse_strict_only_raises_value_errors_and_accepts_only_storable(text: str) -> None:
    try:
        value = serde.parse_strict(text)
    except ValueError:
        return
    _storable(serde.serialize(value))


@FAST
@given(json_values)
def test_what_python_writes_is_accepted_exactly_when_storable(value: Any) -> None:
    text = json.dumps(value)  # ASCII, with \\uXXXX escapes and NaN as Python writes them
    try:
        parsed = serde.parse_strict(text)
    except serde.UnstorableValue:
        with pytest.raises(serde.UnstorableValue):
            serde.serialize(value)
        return
    assert serde.serialize(parsed) == serde.serialize(value)


# ---------------------------------------------------------------------------- edges' parsers
def test_durations_are_bounded() -> None:
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("3650d") == MAX_DELAY_S
    for text in ("99999999999999d", "9" * 400, "9" * 5000, "3651d", "1" + "0" * 60 + "s"):
        with pytest.raises(BadRequest):
            parse_duration(text)


def test_durations_in_iso_8601_as_restate_takes_them() -> None:
    assert parse_duration("PT1S") == 1.0
    assert parse_duration("pt0.5s") == 0.5
    assert parse_duration("PT1H30M") == 5400.0
    assert parse_duration("P1DT2H") == 93600.0
    assert parse_duration("P1W") == 7 * 86400.0
    for text in ("P", "PT", "PT1", "P1H", "PTS", "P3651D", "PT1S1"):
        with pytest.raises(BadRequest):
            parse_duration(text)


def test_ages_never_overflow() -> None:
    now = datetime(2026, 1, 1)
    assert parse_time("1d", now) == datetime(2025, 12, 31)
    for text in ("99999999999999d", "3000d" * 300, "9" * 30 + "d", "not a time"):
        with pytest.raises(BadRequest):
            parse_time(text, now)


def test_integers_and_seconds_from_bodies() -> None:
    assert int_param({"limit": 5.0}, "limit") == 5
    assert int_param({"limit": " 7 "}, "limit") == 7
    for bad in (2.5, "x", True, [1], 10**30, "9" * 30, float("inf")):
        with pytest.raises(BadRequest):
            int_param({"limit": bad}, "limit")
    assert seconds_param({"timeout": 1e9}, "timeout", 10.0, 10.0) == 10.0
    for bad in (float("nan"), float("inf"), -1, 0, "5", None):
        with pytest.raises(BadRequest):
            seconds_param({"timeout": bad}, "timeout", 10.0)


@pytest.mark.parametrize(
    ("headers", "verdict"),
    [
        ({"origin": "http://127.0.0.1:9070"}, True),
        ({"referer": "http://127.0.0.1:9070/invocations"}, True),
        ({}, None),
        ({"origin": "https://127.0.0.1:9070"}, False),  # another scheme
        ({"origin": "http://127.0.0.1:9071"}, False),  # another port
        ({"origin": "http://localhost:9070"}, False),  # another host name
        ({"origin": "null"}, False),
        ({"origin": "http://[::1"}, False),  # unparsable
        ({"referer": "http://evil.example/x"}, False),
        ({"origin": "http://127.0.0.1:9070", "referer": "http://evil.example/"}, True),
    ],
)
def test_one_origin_rule(headers: dict[str, str], verdict: bool | None) -> None:
    assert origin_verdict(Headers({"host": "127.0.0.1:9070", **headers}), "http") is verdict


def test_forms_refuse_nan_and_unstorable_json() -> None:
    form = input_form({"type": "number"})
    for text in ("nan", "inf", "-Infinity", "1e400"):
        with pytest.raises(ValueError, match="finite"):
            value_from_form(form, {"value": text})
    for raw in ("NaN", '"\\ud800"', nested(500)):
        with pytest.raises(ValueError, match="raw JSON"):
            value_from_form(form, {"raw_json": raw})


# ---------------------------------------------------------------------------- SQL limits
@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "q.duckdb"))
    c.execute("CREATE TABLE t AS SELECT range AS n FROM range(10)")
    yield c
    c.close()


def test_sql_results_have_a_byte_cap(con: duckdb.DuckDBPyConnection) -> None:
    big = readonly.MAX_RESULT_BYTES // 4 + 1
    out = readonly.run_query(con, f"SELECT repeat('x', {big}) AS v FROM range(10)", 1000)
    assert out["truncated"] and out["truncated_by"] == "bytes"
    assert len(out["rows"]) == 3
    out = readonly.run_query(con, "SELECT n FROM t", 4)
    assert out["truncated_by"] == "rows" and len(out["rows"]) == 4
    out = readonly.run_query(con, "SELECT n FROM t", 10)
    assert not out["truncated"] and out["truncated_by"] is None and len(out["rows"]) == 10


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1.0, 0.0, 1e12])
def test_sql_time_limit_cannot_be_switched_off(
    con: duckdb.DuckDBPyConnection, timeout: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readonly, "MAX_TIMEOUT_S", 0.3)
    with pytest.raises(TimeoutError, match="0.3 s"):
        readonly.run_query(con, "SELECT count(*) FROM range(1000000000000)", 10, timeout)


@dataclasses.dataclass
class Line:
    sku: str
    qty: int = 1


@dataclasses.dataclass
class Basket:
    owner: str
    lines: list[Line]
    tags: dict[str, int] = dataclasses.field(default_factory=dict)


def test_input_errors_name_every_field_path_like_pydantic():
    from durable.serde import InputError, deserialize

    text = '{"lines": [{"sku": "a"}, {"qty": "x"}], "tags": {"t": "no"}, "extra": 1}'
    with pytest.raises(InputError) as e:
        deserialize(text, Basket, strict=True)
    assert str(e.value) == (
        "5 validation errors for Basket: owner: field required; lines.1.sku: field required; "
        "lines.1.qty: expected an integer, got str; tags.t: expected an integer, got str; "
        "extra: unknown field (fields: owner, lines, tags)"
    )
    assert isinstance(e.value, TypeError) and isinstance(e.value, ValueError)
    # stored values (state, results) keep fields a newer dataclass dropped: not strict
    assert deserialize('{"owner": "o", "lines": [], "gone": 1}', Basket).owner == "o"
    with pytest.raises(
        InputError, match=r"1 validation error for int: expected an integer, got str"
    ):
        deserialize('"7"', int)
    with pytest.raises(InputError, match=r"0: expected a JSON object, got array"):
        deserialize("[[1]]", list[Line])


def test_pydantic_input_errors_keep_their_locations():
    pydantic = pytest.importorskip("pydantic")
    from durable.serde import InputError, deserialize

    class Item(pydantic.BaseModel):
        qty: int

    class Cart(pydantic.BaseModel):
        items: list[Item]

    with pytest.raises(InputError) as e:
        deserialize('{"items": [{"qty": "many"}]}', Cart)
    assert str(e.value).startswith("1 validation error for Cart: items.0.qty: input should be")
