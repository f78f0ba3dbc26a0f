"""Every `durable` command, argument and option is documented in docs/cli.md.

A section per command, headed ``### `durable <command>` ``, names each of its options and
arguments; a section may say "Options as for `other`" to share another one's table.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from durable.devtool.cli import app

pytestmark = pytest.mark.timeout(30)

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def commands(cmd=None, path: tuple[str, ...] = ()):
    cmd = cmd or typer.main.get_command(app)
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from commands(sub, (*path, name))
    else:
        yield " ".join(("durable", *path)), cmd


def sections() -> dict[str, str]:
    text = DOC.read_text()
    parts = re.split(r"^### `(durable[^`]*)`\s*$", text, flags=re.M)
    found = dict(zip(parts[1::2], parts[2::2], strict=True))
    for name, body in found.items():
        m = re.search(r"Options\s+as\s+for\s+`(\w+)`", body)
        if m:
            shared = " ".join(name.split()[:-1] + [m.group(1)])
            found[name] = body + found[shared]
    return found


def test_every_command_has_a_section():
    documented = sections()
    missing = [name for name, _ in commands() if name not in documented]
    assert not missing, f"commands missing from docs/cli.md: {missing}"


@pytest.mark.parametrize("name", [name for name, _ in commands()])
def test_every_option_and_argument_is_documented(name: str):
    cmd = dict(commands())[name]
    body = sections()[name]
    for p in cmd.params:
        if p.param_type_name == "option":
            for opt in p.opts:
                if opt != "--help":
                    assert f"`{opt}`" in body, f"{name}: option {opt} is not documented"
        else:
            metavar = (getattr(p, "metavar", None) or p.name).strip("[]")
            assert metavar in body, f"{name}: argument {metavar} is not documented"


def test_the_readme_points_to_the_cli_docs():
    readme = (DOC.parents[1] / "README.md").read_text()
    assert "docs/cli.md" in readme
