"""Start-up imports: ``import durable`` loads only the package, the runtime no admin API."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)


def _loaded(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code + "\nprint(','.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip().split(",")


def test_import_durable_loads_only_the_package():
    mods = _loaded("import durable")
    heavy = [
        m for m in mods if m.startswith(("durable.", "duckdb", "starlette", "textual", "typer"))
    ]
    assert heavy == []


def test_every_public_name_is_importable_and_typed_where_it_lives():
    import durable
    from durable import combinators, context, definitions, exceptions, serde

    for name in durable.__all__:
        assert getattr(durable, name) is not None, name
    assert durable.Service is definitions.Service
    assert durable.Context is context.Context
    assert durable.gather is combinators.gather
    assert durable.TerminalError is exceptions.TerminalError
    assert durable.JsonSerde is serde.JsonSerde
    assert set(durable.__all__) <= set(dir(durable))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        durable.nope  # noqa: B018


def test_the_runtime_module_leaves_the_admin_api_for_later():
    mods = _loaded("import durable.devtool.runtime")
    assert [m for m in mods if m in ("durable.devtool.admin", "jinja2")] == []
