"""What the filter box means: typed text to the admin API's list filters.

``Order`` (or any prefix that names one service), ``Order/process``, ``key:o1``,
``since:10m``, ``until:2024-05-01``, ``handler:run``, ``service:Order``, ``id:x7k2``;
the other words are searched for, together, in ids, inputs, outputs and errors (``out of
tomatoes``, ``inv_01h``). Statuses are toggled with keys, not typed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["parse_filter", "describe", "STATUSES", "STATUS_KEYS", "KEY_NAMES", "SHORT"]

STATUSES = (
    "pending",
    "scheduled",
    "ready",
    "running",
    "suspended",
    "backing-off",
    "paused",
    "completed",
    "failed",
    "killed",
    "cancelled",
)
#: the key that toggles each status filter (as shown; Textual names "-" "minus")
STATUS_KEYS = dict(zip(STATUSES, "1234567890-", strict=True))
#: Textual's name of each key
KEY_NAMES = {k: "minus" if k == "-" else k for k in STATUS_KEYS.values()}
#: names that fit 80 columns
SHORT = {
    "pending": "pend",
    "scheduled": "sched",
    "ready": "ready",
    "running": "run",
    "suspended": "susp",
    "backing-off": "retry",
    "paused": "pause",
    "completed": "done",
    "failed": "fail",
    "killed": "kill",
    "cancelled": "canc",
}
_FIELDS = {"service", "handler", "key", "since", "until", "id"}


def _pick(word: str, names: Sequence[str]) -> str | None:
    """``word`` as one of ``names``: itself, or the only name it starts (any case)."""
    if word in names:
        return word
    low = word.lower()
    exact = [n for n in names if n.lower() == low]
    if len(exact) == 1:
        return exact[0]
    starts = [n for n in names if n.lower().startswith(low)]
    return starts[0] if len(starts) == 1 else None


def parse_filter(text: str, services: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Query parameters of ``GET /api/invocations`` for the filter text.

    ``services`` maps each service name to its handler names (for prefixes).
    """
    params: dict[str, str] = {}
    free: list[str] = []
    for word in text.split():
        field, sep, value = word.partition(":")
        if sep and field in _FIELDS and value:
            if field == "service":
                value = _pick(value, list(services)) or value
            params[field] = value
        elif "/" in word:
            service, _, handler = word.partition("/")
            svc = _pick(service, list(services)) or service
            params["service"] = svc
            if handler:
                params["handler"] = _pick(handler, list(services.get(svc, ()))) or handler
        elif not word.lower().startswith("inv_") and (found := _pick(word, list(services))):
            params["service"] = found
        else:
            free.append(word)
    if free:
        params["q"] = " ".join(free)
    return params


def describe(params: Mapping[str, str]) -> str:
    """The filter as the table shows it: ``service=Order key=o1``."""
    shown = {"q": "text~", "id": "id~"}
    return " ".join(f"{shown.get(k, k + '=')}{v}" for k, v in params.items())
