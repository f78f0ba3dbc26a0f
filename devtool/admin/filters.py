"""Reading what the admin API is asked: list filters, times and ages, bounded numbers.

Shared by the API's routes and the dashboard's list (``parse_filter``); every refusal is a
:class:`~durable.devtool.errors.BadRequest` that says what to send instead.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import BadRequest
from ..lifecycle import Status
from ..parsing import parse_duration
from ..store.queries import InvocationFilter

__all__ = ["int_param", "seconds_param", "parse_time", "parse_filter"]

_STATUSES = [s.value for s in Status]
_MAX_INT = 2**62  # any count or index the store holds (DuckDB BIGINT) fits below


def int_param(params: Any, name: str, default: int | None = None) -> int | None:
    """An integer from a query string or a JSON body (a JSON 5.0 is 5; 5.5 is refused)."""
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 20 and text.lstrip("+-").isdigit():
            raise BadRequest(f"{name} is out of range (at most {_MAX_INT})")
        try:
            value = int(text)
        except ValueError:
            pass
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{name} must be an integer, not {str(value)[:40]!r}")
    if not -_MAX_INT <= value <= _MAX_INT:
        raise BadRequest(f"{name} is out of range (at most {_MAX_INT})")
    return value


def seconds_param(body: dict[str, Any], name: str, default: float, most: float = 60.0) -> float:
    """A number of seconds above 0; above ``most`` it is cut to ``most``."""
    value = body.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise BadRequest(f"{name} must be a number of seconds above 0 (at most {most:g})")
    return min(float(value), most)


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO time (UTC unless it says otherwise) or an age like 10m, 2h, 1d (ago)."""
    t = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?\s*(ms|s|m|h|d)(\d+(\.\d+)?\s*(ms|s|m|h|d))*", t):
        now = now or datetime.now(UTC).replace(tzinfo=None)
        try:
            return now - timedelta(seconds=parse_duration(t, math.inf))
        except OverflowError:
            raise BadRequest(
                f"age {text[:40]!r} reaches back before year 1: give a smaller age or an ISO time"
            ) from None
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"bad time {text!r}: give an ISO time (2024-05-01T12:00:00) or an age (10m, 2h, 1d)"
        ) from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def parse_filter(params: Any) -> InvocationFilter:
    """An InvocationFilter from query parameters or a JSON object: ``service``,
    ``handler``, ``key``, ``status``, ``since``, ``until``, ``id`` (ids containing it)
    and ``q`` (text in the id, input, output, failure or last error)."""

    def one(name: str) -> str | None:
        v = params.get(name)
        if isinstance(v, (dict, list)):
            raise BadRequest(f"{name} must be a string, not a JSON {type(v).__name__}")
        return None if v in (None, "") else str(v)

    raw = params.get("status")
    statuses: list[str] = []
    if isinstance(raw, list):
        statuses = [str(s) for s in raw]
    elif raw:
        statuses = [s for s in str(raw).split(",") if s]
    if hasattr(params, "getlist"):
        statuses = [s for v in params.getlist("status") for s in v.split(",") if s]
    bad = [s for s in statuses if s not in _STATUSES]
    if bad:
        raise BadRequest(f"unknown status {bad[0]!r} (statuses: {', '.join(_STATUSES)})")
    return InvocationFilter(
        service=one("service"),
        handler=one("handler"),
        key=one("key"),
        statuses=tuple(dict.fromkeys(statuses)),
        since=parse_time(one("since")) if one("since") else None,  # type: ignore[arg-type]
        until=parse_time(one("until")) if one("until") else None,  # type: ignore[arg-type]
        id_contains=one("id"),
        text=_search_text(one("q")),
    )


MAX_SEARCH = 200


def _search_text(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    if len(text) > MAX_SEARCH:
        raise BadRequest(f"q is {len(text)} characters long: search for at most {MAX_SEARCH}")
    return text.strip()
