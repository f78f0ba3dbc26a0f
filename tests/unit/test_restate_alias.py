"""`import restate` resolves to durable's modules (durable.restate_alias).

Each check runs in a fresh interpreter, since the finder changes `sys.modules`: once with
the real restate-sdk importable (the test extra installs it), once with it hidden.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

# Hides any real restate package: a finder at the end of sys.meta_path that refuses it
# (ours, first, still answers), and a check that the real one is gone.
HIDE = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "restate" or name.startswith("restate."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden)", name=name)
sys.meta_path.insert(0, Hide())
try:
    import restate
    raise SystemExit("restate should be hidden")
except ModuleNotFoundError:
    pass
sys.meta_path.pop(0); sys.meta_path.append(Hide())
"""


def run(code: str, hide: bool = False) -> str:
    prelude = HIDE if hide else ""
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=50,
        env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("hide", [False, True], ids=["real-sdk-installed", "real-sdk-hidden"])
def test_restate_and_its_modules_are_durables(hide: bool) -> None:
    out = run(
        """
        from durable.restate_alias import install
        install()
        import durable, durable.exceptions, durable.serde, durable.context
        import restate
        import restate.exceptions, restate.serde, restate.context, restate.vm
        from restate.exceptions import TerminalError
        from restate.vm import SuspendedException
        from restate import Service, VirtualObject, Workflow, Context, app, getLogger
        assert restate.__name__ == "durable.restate", restate.__name__
        assert restate.Service is durable.Service
        assert TerminalError is durable.TerminalError
        assert restate.serde.JsonSerde is durable.serde.JsonSerde
        assert restate.context.Context is durable.context.Context
        assert restate.exceptions.__spec__.name == "durable.restate.exceptions"
        svc = Service("S")
        @svc.handler()
        async def h(ctx: Context) -> None: ...
        served = app([svc])
        assert type(served).__name__ == "App" and list(served) == [svc]
        """,
        hide=hide,
    )
    # said once, however many restate modules the app imports
    assert out.count("serving it through durable") == 1, out


def test_without_install_the_real_sdk_loads() -> None:
    out = run("import restate, restate.serde; print(restate.__file__)")
    assert "site-packages" in out and "durable" not in out


def test_install_forgets_a_restate_imported_before() -> None:
    run(
        """
        import restate  # the real one
        from durable.restate_alias import install
        install(announce=None)
        import restate
        assert restate.__name__ == "durable.restate", restate.__name__
        """
    )


def test_unsupported_modules_fail_at_import_naming_them() -> None:
    out = run(
        """
        from durable.restate_alias import install
        install(announce=None)
        for name in ("restate.server", "restate.aws_lambda", "restate.harness",
                     "restate.ext.openai", "restate.client"):
            try:
                __import__(name)
            except ImportError as e:
                print(e)
            else:
                raise SystemExit(name + " imported")
        try:
            import restate.nosuchmodule
        except ModuleNotFoundError as e:
            print(e)
        """
    )
    lines = out.strip().splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("restate.server is not available when durable serves")
    assert "--no-restate-alias" in lines[0]
    assert "durable.testing" in lines[2]  # the harness: what to use instead
    assert "No module named 'restate.nosuchmodule'" in lines[5]


def test_restate_alias_context_manager_restores_the_real_sdk() -> None:
    run(
        """
        import restate as real
        from durable.restate_alias import restate_alias, installed
        with restate_alias():
            import restate
            assert restate.__name__ == "durable.restate"
        assert installed() is None
        import restate
        assert restate is real
        """
    )


def test_unsupported_names_fail_when_used() -> None:
    from durable.restate import create_client, test_harness

    with pytest.raises(NotImplementedError, match="restate.create_client is not supported"):
        create_client()
    with pytest.raises(NotImplementedError, match="use durable.testing"):
        test_harness(None)
