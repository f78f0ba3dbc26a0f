"""docs/architecture.md names every module of the three packages and stays short.

A module is named by its file stem in backticks, alone or after its folder
(`` `writer` `` or `` `store/writer` ``); a package's ``__init__`` is covered by the
package's own row or sentence.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("sdk", "devtool", "dashboard")
# a current-state document (the structure issue asked for ~20 KB; Restate parity, failures
# and logs, and the timeline added their decisions since): past this, move detail out
MAX_BYTES = 28_000


def modules() -> list[Path]:
    found = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT / pkg)
            # the worktree shims (sdk/devtool -> ../devtool ...) are links, not modules
            if any((ROOT / pkg / part).is_symlink() for part in rel.parts[:1]):
                continue
            if path.stem == "__init__" or "__pycache__" in rel.parts:
                continue
            found.append(path.relative_to(ROOT))
    return found


def test_every_module_is_named() -> None:
    names = set(re.findall(r"`([\w/.*]+)`", DOC.read_text()))
    stems = {n.rsplit("/", 1)[-1] for n in names}
    missing = [str(m) for m in modules() if m.stem not in stems]
    assert not missing, f"docs/architecture.md does not name these modules: {missing}"


def test_it_stays_short() -> None:
    size = len(DOC.read_bytes())
    assert size <= MAX_BYTES, (
        f"docs/architecture.md is {size} bytes: keep it a current-state document; "
        "measurements go to bench/README.md, dropped decisions to docs/decisions/"
    )
