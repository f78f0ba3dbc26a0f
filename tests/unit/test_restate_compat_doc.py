"""docs/restate-compat.md's SDK table names every public name of the real restate-sdk
(the test extra pins it), and each one marked same or differs exists in durable.restate.

A module's public names: its ``__all__``, else what it defines (no ``_`` prefix, no
modules, no type variables). A module that cannot be supported is one ``*`` row.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import typing
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

DOC = Path(__file__).resolve().parents[2] / "docs" / "restate-compat.md"
ROW = re.compile(r"^\| `([\w.]+)` \| `([\w*]+)` \| (same|differs|unsupported) \| (.*) \|$")


def _real_restate() -> typing.Any:
    from durable.restate_alias import installed

    assert installed() is None, "this test reads the real restate-sdk: no alias here"
    return pytest.importorskip("restate")


def restate_public_names() -> dict[str, list[str] | None]:
    """Each public module of the real restate-sdk and its public names (None: the
    module does not import here, its optional dependencies are missing)."""
    restate = _real_restate()
    mods = ["restate"] + sorted(
        m.name
        for m in pkgutil.walk_packages(restate.__path__, "restate.", onerror=lambda _: None)
        if not any(part.startswith("_") for part in m.name.split(".")[1:])
        or m.name == "restate.__main__"
    )
    out: dict[str, list[str] | None] = {}
    for name in mods:
        if name == "restate.ext":
            continue  # a namespace for the integrations, each listed on its own
        try:
            module = importlib.import_module(name)
        except ImportError:
            out[name] = None
            continue
        if hasattr(module, "__all__"):
            out[name] = list(module.__all__)
            continue
        out[name] = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and not isinstance(v, (type(typing), typing.TypeVar, typing.ParamSpec))
            and getattr(v, "__module__", name) == name
        ]
    return out


def doc_rows() -> list[tuple[str, str, str, str]]:
    text = DOC.read_text()
    sdk = text.split("## SDK", 1)[1].split("\n## ", 1)[0]
    return [m.groups() for line in sdk.splitlines() if (m := ROW.match(line))]  # type: ignore[misc]


def test_every_public_name_is_in_the_table() -> None:
    rows = {(m, n) for m, n, _, _ in doc_rows()}
    missing = []
    for module, names in restate_public_names().items():
        if (module, "*") in rows:
            continue
        if names is None:
            missing.append(f"{module} (whole module)")
            continue
        missing += [f"{module}.{n}" for n in names if (module, n) not in rows]
    assert not missing, f"docs/restate-compat.md's SDK table misses: {missing}"


def test_names_marked_same_or_differs_exist_in_durable_restate() -> None:
    absent = []
    for module, name, status, note in doc_rows():
        if status == "unsupported":
            continue
        if status == "differs":
            assert note.strip(), f"{module}.{name} differs: say how and why"
        target = importlib.import_module("durable.restate" + module[len("restate") :])
        if not hasattr(target, name):
            absent.append(f"{module}.{name}")
    assert not absent, f"marked same/differs, but durable.restate lacks: {absent}"
