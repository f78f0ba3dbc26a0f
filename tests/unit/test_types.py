"""mypy passes with the project's configuration (pyproject.toml, ``[tool.mypy]``).

mypy cannot see sdk/ as the package ``durable``: setuptools maps it there (an editable
install does it with an import hook, which mypy does not run). So this lays the package out
as it is installed -- ``durable/`` holding sdk/'s files, ``durable/devtool`` = devtool/, ...
-- as links in a temp dir and runs ``python -m mypy`` there with the project's config.

By hand: ``python tests/unit/test_types.py`` checks the whole configuration;
``python tests/unit/test_types.py -m durable.context`` passes its arguments to mypy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "pyproject.toml"
# where the subpackages of `durable` live in the repository (pyproject's package-dir)
SUBPACKAGES = {"devtool": "devtool", "dashboard": "dashboard", "templates": "templates"}


# What the test checks: the whole configuration (its `packages`: the SDK strict, devtool/
# and dashboard/ with check_untyped_defs).
TARGETS: list[str] = []


def lay_out(dest: Path) -> Path:
    """Link the installed layout of `durable` under ``dest``; return ``dest``."""
    pkg = dest / "durable"
    pkg.mkdir(parents=True)
    for entry in (ROOT / "sdk").iterdir():
        # sdk/devtool ... are a worktree's links to the same folders (scripts/worktree.sh)
        if entry.name in SUBPACKAGES or entry.name == "__pycache__":
            continue
        (pkg / entry.name).symlink_to(entry)
    for name, folder in SUBPACKAGES.items():
        (pkg / name).symlink_to(ROOT / folder, target_is_directory=True)
    return dest


def _readable(line: str) -> str:
    """``durable/devtool/x.py:1: ...`` -> ``devtool/x.py:1: ...`` (the repository's paths)."""
    for name, folder in SUBPACKAGES.items():
        if line.startswith(f"durable/{name}/"):
            return folder + line[len(f"durable/{name}") :]
    if line.startswith("durable/"):
        return "sdk" + line[len("durable") :]
    return line


def run_mypy(args: list[str], workdir: Path, timeout: float | None = None) -> tuple[int, str]:
    """Run mypy with the project's config on the layout in ``workdir``: (exit code, output)."""
    root = lay_out(workdir / "root")
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(CONFIG),
            "--cache-dir",
            str(workdir / "cache"),
            *args,
        ],
        cwd=root,  # mypy finds `durable` in its working directory first
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = "\n".join(_readable(line) for line in (proc.stdout + proc.stderr).splitlines())
    return proc.returncode, output


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_mypy_passes(tmp_path: Path) -> None:
    code, output = run_mypy(TARGETS, tmp_path, timeout=230)
    assert code == 0, f"mypy found errors (config: {CONFIG}):\n{output}"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        code, output = run_mypy(sys.argv[1:], Path(tmp))
    print(output)
    sys.exit(code)
