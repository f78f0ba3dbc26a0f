"""Finding the app and its services: a file, a module, a package, or module:attribute.

An app module serves the list given to ``durable.app([...])`` (or ``restate.app``) when
it defines one at module level; otherwise every Service / VirtualObject / Workflow object
found at module level, imported ones included.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from types import ModuleType
from typing import Any

from durable.definitions import ServiceDef

from .errors import AppLoadError

__all__ = ["load_app", "find_services", "bundled_example", "default_app", "RestateAppError"]


class RestateAppError(AppLoadError):
    """The app defines restate-sdk services, and the real restate-sdk was imported."""


def bundled_example() -> str:
    """Path of the example app served when no app is given."""
    return os.path.join(os.path.dirname(__file__), "example", "app.py")


def default_app(cwd: str) -> str | None:
    """The conventional app in a folder: app.py, main.py, or durable_app.py."""
    for name in ("app.py", "main.py", "durable_app.py"):
        path = os.path.join(cwd, name)
        if os.path.isfile(path):
            return path
    return None


def _import(spec: str) -> tuple[ModuleType, str | None]:
    attr = None
    target = spec
    if ":" in spec and not (len(spec) > 1 and spec[1] == ":" and os.name == "nt"):
        target, attr = spec.rsplit(":", 1)
    if os.path.sep in target and not os.path.exists(target) and os.path.isfile(target + ".py"):
        target += ".py"  # hypercorn's `folder/app:app`
    if target.endswith(".py") or os.path.sep in target or os.path.exists(target):
        # as under `python -m hypercorn ...` (how Restate's examples start), the current
        # folder is importable too: an app in a subfolder may import its siblings
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        path = os.path.abspath(target)
        if os.path.isdir(path):
            init = os.path.join(path, "__init__.py")
            if not os.path.isfile(init):
                raise AppLoadError(
                    f"{target} is a folder without __init__.py: give a file or a package"
                )
            parent, name = os.path.split(path)
            if parent not in sys.path:
                sys.path.insert(0, parent)
            return importlib.import_module(name), attr
        if not os.path.isfile(path):
            raise AppLoadError(f"app file {target} does not exist")
        folder = os.path.dirname(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = os.path.splitext(os.path.basename(path))[0]
        if name == "__main__":  # not this process's __main__: its `if __name__` block stays off
            name = "__durable_app_main__"
        mod_spec = importlib.util.spec_from_file_location(name, path)
        assert mod_spec is not None and mod_spec.loader is not None
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        mod_spec.loader.exec_module(module)
        return module, attr
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return importlib.import_module(target), attr


def find_services(obj: Any) -> list[ServiceDef]:
    """The services of a module, an app list, or a single definition."""
    if isinstance(obj, ServiceDef):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [s for s in obj if isinstance(s, ServiceDef)]
    if isinstance(obj, ModuleType):
        values = list(vars(obj).values())
        for v in values:  # an explicit app list wins
            if isinstance(v, list) and type(v).__name__ == "App":
                return find_services(v)
            services = getattr(v, "services", None)
            if type(v).__module__.startswith("restate") and isinstance(services, (list, tuple)):
                return find_services(list(services))
        seen: list[ServiceDef] = []
        for v in values:
            if isinstance(v, ServiceDef) and v not in seen:
                seen.append(v)
        return seen
    raise AppLoadError(f"{obj!r} is not a module, a service or a list of services")


def _real_restate_services(obj: Any) -> bool:
    values = vars(obj).values() if isinstance(obj, ModuleType) else [obj]
    return any(
        type(v).__module__ in ("restate.service", "restate.object", "restate.workflow")
        for v in values
    )


def load_app(spec: str) -> dict[str, ServiceDef]:
    """Import the app and return its services by name; AppLoadError says what is wrong."""
    try:
        module, attr = _import(spec)
        obj: Any = getattr(module, attr) if attr else module
    except AppLoadError:
        raise
    except SyntaxError as e:
        raise AppLoadError(
            f"syntax error in {e.filename}, line {e.lineno}: {e.msg}\n    {(e.text or '').rstrip()}"
        ) from None
    except AttributeError as e:
        raise AppLoadError(f"cannot load app {spec}: {e}") from None
    except Exception as e:
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{tb[-1].filename}, line {tb[-1].lineno}" if tb else spec
        raise AppLoadError(f"importing {spec} failed at {where}: {type(e).__name__}: {e}") from None
    try:
        services = find_services(obj)
    except AppLoadError:
        if not _real_restate_services(module):
            raise
        services = []
    if not services and _real_restate_services(module):
        raise RestateAppError(
            f"{spec} defines restate-sdk services, and the real restate-sdk was loaded "
            "(durable dev --no-restate-alias): durable serves a Restate app through its own "
            "`restate` modules, so drop --no-restate-alias"
        )
    if not services:
        raise AppLoadError(f"{spec} defines no Service, VirtualObject or Workflow at module level")
    out: dict[str, ServiceDef] = {}
    for s in services:
        if s.name in out and out[s.name] is not s:
            raise AppLoadError(f"two services are named {s.name!r}: service names must be unique")
        if not s.handlers:
            raise AppLoadError(f"service {s.name} has no handlers")
        if s.kind == "workflow" and not any(h.kind == "workflow" for h in s.handlers.values()):
            raise AppLoadError(f"workflow {s.name} has no @{s.name}.main() handler")
        out[s.name] = s
    return out
