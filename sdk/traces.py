"""Where a failure happened in the handler's code: its file:line and traceback text."""

from __future__ import annotations

import os
import sysconfig
import traceback

__all__ = ["user_location", "traceback_text"]

_SDK_DIR = os.path.dirname(os.path.realpath(__file__)) + os.sep
_LIBRARY_DIRS = tuple(
    {os.path.realpath(p) + os.sep for k in ("stdlib", "platstdlib") if (p := sysconfig.get_path(k))}
)


def _is_library(filename: str) -> bool:
    if filename.startswith("<"):
        return True
    real = os.path.realpath(filename)
    return (
        real.startswith(_SDK_DIR)
        or "site-packages" in real
        or "dist-packages" in real
        or real.startswith(_LIBRARY_DIRS)
    )


def user_location(e: BaseException) -> str:
    """``file:line`` of the deepest frame of ``e``'s traceback in the user's code (not
    durable, the standard library or an installed package); a path under the current
    folder is relative. Empty when no frame is the user's."""
    found = None
    for fs in traceback.extract_tb(e.__traceback__):
        if not _is_library(fs.filename):
            found = fs
    if found is None:
        return ""
    path = found.filename
    try:
        rel = os.path.relpath(path)
        if not rel.startswith(".."):
            path = rel
    except ValueError:  # another drive (Windows)
        pass
    return f"{path}:{found.lineno}"


def traceback_text(e: BaseException) -> str:
    """The traceback as Python prints it, without durable's and the standard library's
    frames when the user's code has some."""
    te = traceback.TracebackException.from_exception(e)
    kept = [fs for fs in te.stack if not _is_library(fs.filename)]
    if kept:
        te.stack = traceback.StackSummary.from_list(kept)
    return "".join(te.format())
