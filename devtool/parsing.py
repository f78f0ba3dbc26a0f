"""What the HTTP edges (ingress, admin API, dashboard forms) parse alike: durations and
bodies with a size limit."""

from __future__ import annotations

import re

from starlette.requests import Request

from .errors import BadRequest, PayloadTooLarge

__all__ = ["MAX_DELAY_S", "parse_duration", "read_body"]

MAX_DELAY_S = 10 * 365 * 86400.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_N = r"(\d+(?:\.\d+)?)"
# ISO 8601 (lower-cased), as Restate's ?delay= also takes: P1D, PT1H30M, PT0.5S
_ISO = re.compile(rf"p(?:{_N}w)?(?:{_N}d)?(?:t(?=\d)(?:{_N}h)?(?:{_N}m)?(?:{_N}s)?)?")
_ISO_UNITS = (7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0)


def parse_duration(text: str, most: float = MAX_DELAY_S) -> float:
    """'10s', '500ms', '1m30s', '2h', ISO 8601 ('PT1M30S') or plain milliseconds -> seconds
    (at most ``most``)."""
    text = text.strip().lower()
    if len(text) > 64:
        raise BadRequest(
            f"bad duration {text[:20]!r}... ({len(text)} characters): use forms like 500ms, "
            "10s, 1m30s, 2h"
        )
    iso = _ISO.fullmatch(text) if text.startswith("p") and len(text) > 1 else None
    if re.fullmatch(r"\d+", text):
        total = int(text) / 1000.0
    elif iso is not None:
        total = sum(float(v) * u for v, u in zip(iso.groups(), _ISO_UNITS, strict=True) if v)
    else:
        pos, total = 0, 0.0
        for m in _DURATION.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            raise BadRequest(f"bad delay {text!r}: use forms like 500ms, 10s, 1m30s, 2h or PT1M30S")
    if total > most:
        raise BadRequest(f"duration {text!r} is too long: at most {most / 86400:g} days")
    return total


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes with a 413."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > limit:
                raise PayloadTooLarge(
                    f"request body of {length} bytes is over the limit of {limit} bytes"
                )
        except ValueError:
            raise BadRequest("bad Content-Length header") from None
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
