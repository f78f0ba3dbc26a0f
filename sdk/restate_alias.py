"""``import restate`` served by durable: a ``sys.meta_path`` finder.

``durable dev`` installs it in the process that imports the user's app (the worker, or
the runtime itself with ``--inline``) before the app is imported, so an app written for
restate-sdk-python runs unchanged: ``restate`` and each of its public modules resolve to
the module of the same name under :mod:`durable.restate`, even when the real
``restate-sdk`` is installed. ``durable dev --no-restate-alias`` leaves it out.
``durable.testing`` does not install it on its own (a test process may import the real
SDK too): wrap the app's import in :func:`restate_alias` there.

Modules that belong to Restate's own server protocol or its cloud and agent integrations
(``restate.server``, ``restate.aws_lambda``, ``restate.ext.openai``...) fail to import
with an :class:`ImportError` that names them and says why.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

__all__ = [
    "RestateAlias",
    "install",
    "uninstall",
    "installed",
    "restate_alias",
    "UNSUPPORTED",
    "ANNOUNCEMENT",
]

ANNOUNCEMENT = (
    "[durable] this app imports restate: serving it through durable "
    "(restate's API, durable's runtime; --no-restate-alias turns this off)"
)

_PROTOCOL = "it is Restate's own server protocol, which durable dev replaces"
#: restate modules that durable does not provide, and why (prefixes end with ".").
UNSUPPORTED: dict[str, str] = {
    "restate.server": _PROTOCOL,
    "restate.server_context": _PROTOCOL,
    "restate._internal": _PROTOCOL,
    "restate.__main__": "it is restate-sdk's command line",
    "restate.aws_lambda": "it serves handlers on AWS Lambda; durable dev serves them itself",
    "restate.harness": "it starts a Restate server in Docker; use durable.testing instead",
    "restate.client": "it calls a Restate ingress over HTTP; call durable dev's ingress with "
    "httpx, or use durable.testing",
    "restate.connection": "it tunnels to Restate Cloud",
    "restate.ext.": "Restate's agent and tracing integrations need a Restate server",
}


def _unsupported(fullname: str) -> str | None:
    for name, why in UNSUPPORTED.items():
        if fullname == name or (name.endswith(".") and fullname.startswith(name)):
            return why
    return None


class _AliasLoader(importlib.abc.Loader):
    """Loads ``restate.X`` as the already importable ``durable.restate.X``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system set __spec__ to the alias's: the module keeps its own
        module.__spec__ = self._spec


class RestateAlias(importlib.abc.MetaPathFinder):
    """Resolves ``restate`` and ``restate.*`` to ``durable.restate`` and its modules."""

    def __init__(self, announce: Callable[[str], None] | None = None) -> None:
        self.announce = announce
        self.announced = False

    def find_spec(
        self,
        fullname: str,
        path: object = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "restate" and not fullname.startswith("restate."):
            return None
        why = _unsupported(fullname)
        if why is not None:
            raise ImportError(
                f"{fullname} is not available when durable serves a Restate app: {why}. "
                "Import it only where the app runs on Restate (for example under "
                "`if __name__ == '__main__':`), or run durable dev --no-restate-alias "
                "to load the real restate-sdk",
                name=fullname,
            )
        target_name = "durable.restate" + fullname[len("restate") :]
        found = importlib.util.find_spec(target_name)
        if found is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: durable's Restate API has no such module "
                "(see docs/restate-compat.md for the ones it has)",
                name=fullname,
            )
        if not self.announced:
            self.announced = True
            if self.announce is not None:
                self.announce(ANNOUNCEMENT)
        return importlib.machinery.ModuleSpec(
            fullname,
            _AliasLoader(target_name),
            is_package=found.submodule_search_locations is not None,
        )


def _print(line: str) -> None:
    print(line, flush=True)


def installed() -> RestateAlias | None:
    """The installed finder, if any."""
    return next((f for f in sys.meta_path if isinstance(f, RestateAlias)), None)


def _drop_restate_modules() -> dict[str, ModuleType]:
    dropped = {}
    for name in list(sys.modules):
        if name == "restate" or name.startswith("restate."):
            dropped[name] = sys.modules.pop(name)
    return dropped


def install(announce: Callable[[str], None] | None = _print) -> RestateAlias:
    """Put the finder first on ``sys.meta_path`` (once); ``restate`` modules imported
    before (the real SDK's) are forgotten so the next import gets durable's.

    Args:
        announce: Called once with :data:`ANNOUNCEMENT` when the app first imports
            restate (default: print it); None says nothing.
    """
    finder = installed()
    if finder is None:
        finder = RestateAlias(announce)
        sys.meta_path.insert(0, finder)
        _drop_restate_modules()
    return finder


def uninstall() -> None:
    """Remove the finder and forget the ``restate`` modules it gave."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, RestateAlias)]
    _drop_restate_modules()


@contextlib.contextmanager
def restate_alias(announce: Callable[[str], None] | None = None) -> Iterator[RestateAlias]:
    """Within the block, ``import restate`` gives durable's; afterwards the modules that
    were imported before (the real SDK, or none) come back.

    Example:
        >>> with restate_alias():
        ...     import my_restate_app  # its `import restate` is durable's
    """
    before = _drop_restate_modules()
    already = installed()
    finder = already or install(announce)
    try:
        yield finder
    finally:
        if already is None:
            uninstall()
        else:
            _drop_restate_modules()
        sys.modules.update(before)
