"""What a conformance scenario is (data), and how one is played against one side.

A scenario is a list of steps; a step is one HTTP request and the answer expected from
Restate 1.7. Where durable deliberately answers otherwise, the step also holds
``durable=`` (its answer) and ``why=`` (the reason, which docs/restate-compat.md repeats).
A durable app served by ``durable serve`` to Restate (the ``serve`` side) gets Restate's
answers, except where durable's own SDK code answers (its serde): there the step holds
``serve=`` and ``serve_why=`` (docs/deploy.md repeats them).

Values that differ by system but must agree within a run (invocation ids, awakeable ids)
are captured by name (``capture={"inv": "body.invocationId"}``) and used later as
``{inv}`` in paths, headers and bodies, or compared with ``Var("inv")``. ``{u}`` is a
token unique to one run of one scenario on one side, for keys and idempotency keys.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "ANY",
    "EMPTY",
    "PRESENT",
    "ABSENT",
    "Var",
    "Expect",
    "Step",
    "Scenario",
    "Side",
    "Mismatch",
    "ok",
    "error",
    "expected",
    "play",
]


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


ANY = _Marker("ANY")  # any body
EMPTY = _Marker("EMPTY")  # no body at all
PRESENT = _Marker("PRESENT")  # a header that must be there, whatever its value
ABSENT = _Marker("ABSENT")  # a header that must not be there
NO_BODY = _Marker("NO_BODY")  # a request sent with no body and no content type


@dataclass(frozen=True)
class Var:
    """A value captured by an earlier step."""

    name: str


@dataclass(frozen=True)
class Expect:
    """An answer: its status, its body (JSON equality, ``EMPTY``, ``ANY``, a predicate,
    or for errors a dict whose keys must all match), headers (value, ``PRESENT`` or
    ``ABSENT``), and what to remember from it."""

    status: int
    body: Any = ANY
    headers: dict[str, Any] = field(default_factory=dict)
    capture: dict[str, str] = field(default_factory=dict)
    subset: bool = False  # body is a dict of keys that must match (error bodies)


def ok(body: Any = ANY, **kw: Any) -> Expect:
    """A 200 whose JSON body is ``body`` (``EMPTY``: no body and no content type)."""
    headers = {"x-restate-id": PRESENT, **kw.pop("headers", {})}
    if body is EMPTY:
        headers.setdefault("content-type", ABSENT)
    elif body is not ANY:
        headers.setdefault("content-type", "application/json")
    return Expect(200, body, headers, **kw)


def error(status: int, source: str, message: str | None = None, **kw: Any) -> Expect:
    """An error answer in Restate's shape: ``{"code", "message", "source"}``, with
    ``x-restate-error-source``; ``message`` compared only when given (an ingress's own
    wording is not part of the contract, a handler's message is)."""
    body: dict[str, Any] = {"code": status, "source": source}
    if message is not None:
        body["message"] = message
    headers = {"x-restate-error-source": source, **kw.pop("headers", {})}
    return Expect(status, body, headers, subset=True, **kw)


@dataclass(frozen=True)
class Step:
    """One request. ``admin="cancel"`` (or ``"kill"``): that action on the invocation
    named by ``path``, through the side's admin API instead (Restate and durable spell
    those differently)."""

    method: str
    path: str
    expect: Expect
    json: Any = NO_BODY
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    durable: Expect | None = None
    why: str | None = None
    serve: Expect | None = None  # the serve side's answer, where it is not Restate's
    serve_why: str | None = None
    until: float = 0.0  # repeat until the answer matches, for this many seconds
    admin: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    topic: str
    steps: tuple[Step, ...]

    @property
    def differences(self) -> list[Step]:
        return [s for s in self.steps if s.durable is not None]

    @property
    def serve_differences(self) -> list[Step]:
        return [s for s in self.steps if s.serve is not None]


@dataclass
class Side:
    """One system under test: its ingress URL and how it acts on an invocation
    (``admin(action, invocation id)``, answering 202 when the action is accepted)."""

    name: str  # "restate" | "durable" (``durable=`` answers) | "serve" (``serve=`` ones)
    ingress: str
    admin: Callable[[str, str], httpx.Response]


class Mismatch(AssertionError):
    pass


_TOKEN = re.compile(r"\{(\w+)\}")


def _fill(text: str, names: dict[str, Any]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            raise KeyError(f"{{{m.group(1)}}} was not captured by an earlier step")
        return str(names[m.group(1)])

    return _TOKEN.sub(one, text)


def _fill_value(value: Any, names: dict[str, Any]) -> Any:
    if isinstance(value, Var):
        return names[value.name]
    if isinstance(value, str):
        return _fill(value, names)
    if isinstance(value, list):
        return [_fill_value(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill_value(v, names) for k, v in value.items()}
    return value


def _body_of(r: httpx.Response) -> Any:
    if not r.content:
        return EMPTY
    try:
        return json.loads(r.content)
    except ValueError:
        return r.text


def _check(r: httpx.Response, want: Expect, names: dict[str, Any]) -> list[str]:
    problems = []
    if r.status_code != want.status:
        problems.append(f"status {r.status_code}, expected {want.status}")
    got = _body_of(r)
    body = _fill_value(want.body, names)
    if body is ANY:
        pass
    elif callable(body) and not isinstance(body, _Marker):
        if not body(got):
            problems.append(f"body {got!r} does not satisfy {getattr(body, '__name__', body)}")
    elif want.subset:
        if not isinstance(got, dict):
            problems.append(f"body {got!r}, expected a JSON object with {body!r}")
        else:
            for k, v in body.items():
                if got.get(k) != v:
                    problems.append(f"body[{k!r}] = {got.get(k)!r}, expected {v!r}")
    elif got != body:
        problems.append(f"body {got!r}, expected {body!r}")
    for name, v in want.headers.items():
        have = r.headers.get(name)
        if v is PRESENT:
            if have is None:
                problems.append(f"no {name} header")
        elif v is ABSENT:
            if have is not None:
                problems.append(f"header {name}: {have!r}, expected none")
        else:
            v = _fill_value(v, names)
            if have is None or have.split(";")[0].strip() != v:
                problems.append(f"header {name}: {have!r}, expected {v!r}")
    return problems


def _capture(r: httpx.Response, spec: str) -> Any:
    where, _, name = spec.partition(".")
    if where == "header":
        return r.headers[name]
    value = _body_of(r)
    for part in filter(None, name.split(".")):
        value = value[part]
    return value


def _send(client: httpx.Client, side: Side, step: Step, names: dict[str, Any]) -> httpx.Response:
    path = _fill(step.path, names)
    if step.admin is not None:
        return side.admin(step.admin, path)
    headers = {k: _fill(v, names) for k, v in step.headers.items()}
    kwargs: dict[str, Any] = {"headers": headers}
    if step.raw is not None:
        kwargs["content"] = step.raw
    elif step.json is not NO_BODY:
        kwargs["content"] = json.dumps(_fill_value(step.json, names)).encode()
        headers.setdefault("content-type", "application/json")
    return client.request(step.method, side.ingress + path, **kwargs)


def expected(step: Step, side: Side) -> Expect:
    """The answer ``side`` must give at ``step``."""
    if side.name == "durable" and step.durable is not None:
        return step.durable
    if side.name == "serve" and step.serve is not None:
        return step.serve
    return step.expect


def play(scenario: Scenario, side: Side, unique: str) -> None:
    """Play every step against ``side``; raise :class:`Mismatch` at the first answer that
    differs from what is expected there."""
    names: dict[str, Any] = {"u": unique}
    with httpx.Client(timeout=30) as client:
        for i, step in enumerate(scenario.steps):
            want = expected(step, side)
            deadline = time.monotonic() + step.until
            while True:
                r = _send(client, side, step, names)
                problems = _check(r, want, names)
                if not problems or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if problems:
                raise Mismatch(
                    f"{scenario.name} on {side.name}, step {i + 1} ({step.method} "
                    f"{_fill(step.path, names)}): " + "; ".join(problems) + f"\n  answer: "
                    f"{r.status_code} {dict(r.headers)} {r.text[:500]!r}"
                )
            for name, spec in want.capture.items():
                names[name] = _capture(r, spec)
