"""Finding an app's services: files, modules, packages, module:attribute, errors."""

from __future__ import annotations

import sys
import textwrap

import pytest
from durable.devtool.discovery import default_app, load_app
from durable.devtool.errors import AppLoadError

pytestmark = pytest.mark.timeout(20)

MOD = """
from durable import Service, VirtualObject, Context
import durable
a = Service("A")
@a.handler()
async def h(ctx: Context, x: int) -> int:
    return x
b = VirtualObject("B")
@b.handler()
async def g(ctx) -> None:
    pass
"""


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in list(sys.modules):
        if name.startswith(("mypkg", "appmod", "listmod")):
            del sys.modules[name]


def test_file_module_package_and_attribute(pkg):
    (pkg / "appmod.py").write_text(MOD)
    assert set(load_app(str(pkg / "appmod.py"))) == {"A", "B"}
    del sys.modules["appmod"]
    assert set(load_app("appmod")) == {"A", "B"}
    (pkg / "mypkg").mkdir()
    (pkg / "mypkg" / "__init__.py").write_text(MOD)
    assert set(load_app(str(pkg / "mypkg"))) == {"A", "B"}
    (pkg / "listmod.py").write_text(MOD + "\nonly = [a]\n")
    assert set(load_app("listmod:only")) == {"A"}


def test_app_list_wins_over_module_scan(pkg):
    (pkg / "appmod.py").write_text(MOD + "\napp = durable.app([b])\n")
    assert set(load_app("appmod")) == {"B"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = (", "syntax error in"),
        ("raise RuntimeError('boom at import')", "RuntimeError: boom at import"),
        ("x = 1", "defines no Service"),
        (
            MOD + "\nc = Service('A')\n@c.handler()\nasync def z(ctx): pass\n",
            "two services are named 'A'",
        ),
        (
            "from durable import Workflow\nw = Workflow('W')\n@w.handler()\nasync def s(ctx): pass\n",
            "no @W.main()",
        ),
    ],
)
def test_bad_apps_say_why(pkg, source, message):
    (pkg / "appmod.py").write_text(textwrap.dedent(source))
    with pytest.raises(AppLoadError) as err:
        load_app(str(pkg / "appmod.py"))
    assert message in str(err.value)


def test_missing_file_and_default_app(pkg):
    with pytest.raises(AppLoadError, match="does not exist"):
        load_app(str(pkg / "nope.py"))
    assert default_app(str(pkg)) is None
    (pkg / "main.py").write_text(MOD)
    assert default_app(str(pkg)) == str(pkg / "main.py")


def test_invalid_handler_definitions_are_rejected():
    from durable import Service
    from durable.exceptions import InvalidUsageError

    s = Service("S")
    with pytest.raises(InvalidUsageError, match="must be an async function"):
        s.handler()(lambda ctx: None)
    with pytest.raises(InvalidUsageError, match="must take"):

        @s.handler()
        async def three(ctx, a, b):
            pass


def test_project_config_is_read_from_pyproject(tmp_path):
    from durable.devtool.cli import _project_config

    assert _project_config(str(tmp_path)) == {}
    (tmp_path / "pyproject.toml").write_text(
        '[tool.durable]\napp = "src/app.py"\nport = 8181\nwatch = ["src"]\n'
    )
    assert _project_config(str(tmp_path)) == {"app": "src/app.py", "port": 8181, "watch": ["src"]}


def test_restate_example_layout(pkg):
    """As `python -m hypercorn shop/app.py:app` from the project folder: the app imports
    its siblings as a package, `shop/app:app` finds the file, and a `__main__.py` app does
    not run its main block."""
    (pkg / "shop").mkdir()
    (pkg / "shop" / "__init__.py").write_text("")
    (pkg / "shop" / "handlers.py").write_text(MOD)
    (pkg / "shop" / "appmod.py").write_text("from shop.handlers import a\nonly = [a]\n")
    assert set(load_app("shop/appmod.py:only")) == {"A"}
    del sys.modules["appmod"]
    assert set(load_app("shop/appmod:only")) == {"A"}
    (pkg / "__main__.py").write_text(
        MOD + "\nif __name__ == '__main__':\n    raise SystemExit('the main block ran')\n"
    )
    assert set(load_app(str(pkg / "__main__.py"))) == {"A", "B"}
    for name in ("shop", "shop.handlers", "__durable_app_main__"):
        sys.modules.pop(name, None)
