"""`durable init`: a new project from one of the templates in ``durable.templates``."""

from __future__ import annotations

import os
import re
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Annotated

import typer

from ._common import fail, out

__all__ = ["init", "templates"]

_SKIP = {"__pycache__", ".pytest_cache", ".ruff_cache", ".durable"}
_DOTTED = {"gitignore"}


def _root() -> Traversable:
    return resources.files("durable.templates") / "projects"


def templates() -> dict[str, str]:
    """Template name -> its one-line description (the first line of its README)."""
    found = {}
    for t in sorted(_root().iterdir(), key=lambda t: t.name):
        if t.is_dir() and t.name not in _SKIP:
            readme = t / "README.md"
            first = readme.read_text().splitlines()[2] if readme.is_file() else ""
            found[t.name] = first.strip()
    return found


def _copy(src: Traversable, dst: str, names: dict[str, str]) -> list[str]:
    written = []
    for item in sorted(src.iterdir(), key=lambda t: t.name):
        if item.name in _SKIP or item.name.endswith(".pyc"):
            continue
        # dot files are stored without their dot (package data globs skip dot files)
        target = os.path.join(dst, "." + item.name if item.name in _DOTTED else item.name)
        if item.is_dir():
            os.makedirs(target, exist_ok=True)
            written += _copy(item, target, names)
            continue
        text = item.read_text()
        for k, v in names.items():
            text = text.replace("{{" + k + "}}", v)
        with open(target, "w") as f:
            f.write(text)
        written.append(target)
    return written


def init(
    folder: Annotated[
        str, typer.Argument(metavar="DIR", help="The new project's folder (default: here).")
    ] = ".",
    template: Annotated[
        str, typer.Option("--template", "-t", help="The template (see --list).")
    ] = "minimal",
    list_: Annotated[bool, typer.Option("--list", help="List the templates and exit.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a folder that is not empty.")
    ] = False,
) -> None:
    """Create a new durable project from a template (an app, its tests, a README)."""
    available = templates()
    if list_:
        for name, about in available.items():
            out.print(f"{name:12} {about}", markup=False)
        return
    if template not in available:
        fail(f"unknown template {template!r} (templates: {', '.join(available)})")
    path = os.path.abspath(folder)
    if os.path.exists(path) and not os.path.isdir(path):
        fail(f"{folder} exists and is not a folder")
    if os.path.isdir(path) and any(n not in _SKIP for n in os.listdir(path)) and not force:
        fail(f"{folder} is not empty: pick a new folder, or pass --force to write into it")
    os.makedirs(path, exist_ok=True)
    name = os.path.basename(path) or "app"
    package = re.sub(r"\W+", "_", name).strip("_").lower() or "app"
    written = _copy(_root() / template, path, {"project_name": name, "package_name": package})
    out.print(f"created {folder} from the {template} template:", markup=False)
    for w in written:
        out.print(f"  {os.path.relpath(w, path)}", markup=False)
    where = "" if folder == "." else f"cd {folder} && "
    out.print(f"next: {where}durable dev    (tests: python -m pytest)", markup=False)
