"""Every Python snippet of docs/guide.md runs against durable.testing (so none goes stale).

Each ```python block is a whole module with an ``async def main()``: it is written to a
file, imported, and its ``main`` run.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"
SNIPPETS = re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(), flags=re.M | re.S)
BLOCKS = (
    "Service(",
    "ctx.run(",
    "ctx.sleep(",
    "ctx.awakeable(",
    "ctx.object_call(",
    "send_delay=",
    "ctx.promise(",
    "ctx.set(",
    "durable.select(",
    "TerminalError(",
    "RetryPolicy(",
    "CancelledError",
    "durable.testing.Runtime(",
)


def test_the_guide_shows_every_building_block():
    text = "\n".join(SNIPPETS)
    assert len(SNIPPETS) >= 12
    missing = [b for b in BLOCKS if b not in text]
    assert not missing, f"docs/guide.md has no runnable snippet using {missing}"
    assert "aw_id, " in text  # the (id, promise) shape of ctx.awakeable()


@pytest.mark.parametrize("n", range(len(SNIPPETS)), ids=lambda n: f"snippet{n + 1}")
def test_snippet_runs(n: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    source = SNIPPETS[n]
    assert "async def main()" in source, f"snippet {n + 1} has no async def main()"
    name = f"guide_snippet_{n + 1}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module(name)
        asyncio.run(module.main())
    finally:
        sys.modules.pop(name, None)


def test_the_readme_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    from datetime import timedelta

    import durable.testing

    readme = GUIDE.parents[1] / "README.md"
    (source,) = re.findall(r"^```python\n(.*?)^```", readme.read_text(), flags=re.M | re.S)
    (tmp_path / "readme_app.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    app = importlib.import_module("readme_app")

    async def main() -> None:
        async with durable.testing.Runtime([app.greeter, app.counter]) as rt:
            assert await rt.call(app.greet, "Ann") == "Hello Ann!"
            assert await rt.call(app.add, 5, key="k") == 5
            inv = await rt.send(app.remind, "Bob")
            await rt.advance(timedelta(days=1))
            said = re.search(r"resolve (\S+) to answer Bob", capsys.readouterr().out)
            assert said is not None
            await rt.resolve_awakeable(said.group(1), "yes")
            assert await rt.output(inv) == "Bob said yes"

    try:
        asyncio.run(main())
    finally:
        sys.modules.pop("readme_app", None)
