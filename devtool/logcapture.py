"""What handlers print or log, captured per invocation.

While a handler runs, ``durable.logging.current_executor`` names its executor (the
context variable follows it into ``ctx.run`` body threads). :class:`Capture` replaces
``sys.stdout``/``sys.stderr`` with streams that send a line written in a handler's
context to ``sink`` as a :class:`LogLine` and pass anything else to the stream they
replaced, and adds a root logging handler that does the same for log records. Output of
a replaying handler is dropped: a replay does not repeat what the attempt said before.
The worker process sends the lines to the runtime in its frames; ``--inline`` and
``durable.testing`` hand them to the engine on the same loop.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from durable.logging import current_executor

__all__ = ["LogLine", "Capture", "MAX_LINE", "cut"]

#: characters kept of one line or record; the rest is cut with a note
MAX_LINE = 4000


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line a handler printed (``stream`` stdout or stderr) or one log record
    (``stream`` "log", with its ``level``)."""

    invocation_id: str
    at: float  # time.time()
    stream: str
    level: str | None
    text: str


def cut(text: str, most: int = MAX_LINE) -> str:
    """``text`` cut to ``most`` characters, saying how many were left out; a lone
    surrogate (which the store cannot hold) becomes ``?``."""
    if len(text) > most:
        text = f"{text[:most]} ... [cut: {len(text) - most} more characters]"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


class _Stream:
    """Stands in for sys.stdout or sys.stderr."""

    def __init__(self, capture: Capture, name: str, original: TextIO) -> None:
        self._capture = capture
        self._name = name
        self.original = original

    def write(self, s: str) -> int:
        ex: Any = current_executor.get()  # an Executor: its start names the invocation
        if getattr(ex, "start", None) is None or self._capture.busy():
            # no executor (or another owner's, durable serve's, in a test process)
            return self.original.write(s)
        if not ex.replaying:
            self._capture.feed(ex.start.invocation_id, self._name, s)
            if self._capture.echo:
                self.original.write(s)
        return len(s)

    def flush(self) -> None:
        self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _Handler(logging.Handler):
    def __init__(self, capture: Capture, fallback: bool) -> None:
        super().__init__()
        self._capture = capture
        self._fallback = fallback
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        ex: Any = current_executor.get()  # an Executor: its start names the invocation
        if getattr(ex, "start", None) is None or self._capture.busy():
            # no executor (or another owner's, durable serve's, in a test process)
            # the worker has no other handler: do what Python does then (warnings up)
            if self._fallback and record.levelno >= logging.WARNING:
                logging.lastResort.handle(record)  # type: ignore[union-attr]
            return
        if ex.replaying:
            return
        try:
            text = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._capture.send(
            LogLine(ex.start.invocation_id, time.time(), "log", record.levelname, cut(text))
        )


class Capture:
    """Routes handlers' prints and log records to ``sink`` (called on ``loop``'s thread,
    one LogLine at a time, in the order they were written).

    Args:
        sink: Where the lines go.
        loop: The loop the handlers run on.
        fallback: Print log records from outside handlers (warnings and up) to stderr,
            as Python does when no handler is configured (the worker process).
        echo: Write handlers' prints to the replaced stream too (``durable.testing``:
            pytest shows them).
    """

    def __init__(
        self,
        sink: Callable[[LogLine], None],
        loop: asyncio.AbstractEventLoop,
        fallback: bool,
        echo: bool = False,
    ) -> None:
        self._sink = sink
        self.echo = echo
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._fallback = fallback
        self._partial: dict[tuple[str, str], str] = {}
        self._sent_open: set[tuple[str, str]] = set()  # partial lines sent before their end
        self._lock = threading.Lock()
        self._flush_due = False
        self._local = threading.local()
        self._handler: _Handler | None = None
        self._streams: list[Any] = []  # the _Streams this capture put in place

    def install(self) -> None:
        self._handler = _Handler(self, self._fallback)
        logging.getLogger().addHandler(self._handler)
        self.ensure()

    def ensure(self) -> None:
        """Stand in for sys.stdout and sys.stderr again if something replaced them since
        (the embedded TUI captures prints once it runs)."""
        if sys.stdout not in self._streams:
            out = _Stream(self, "stdout", sys.stdout)
            self._streams.append(out)
            sys.stdout = out  # type: ignore[assignment]
        if sys.stderr not in self._streams:
            err = _Stream(self, "stderr", sys.stderr)
            self._streams.append(err)
            sys.stderr = err  # type: ignore[assignment]

    def uninstall(self) -> None:
        """Put back what install replaced (what a test or another tool swapped in since
        is left alone)."""
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None
        while sys.stdout in self._streams:
            sys.stdout = sys.stdout.original  # type: ignore[union-attr]
        while sys.stderr in self._streams:
            sys.stderr = sys.stderr.original  # type: ignore[union-attr]
        self._streams.clear()
        self._flush_partial()

    def busy(self) -> bool:
        """True while this thread hands lines to the sink (what the sink prints passes)."""
        return getattr(self._local, "busy", False)

    def feed(self, inv_id: str, stream: str, s: str) -> None:
        """Text written to ``stream`` by invocation ``inv_id``: whole lines go now, a
        partial one at the end of the loop turn (unless a newline comes first)."""
        with self._lock:
            k = (inv_id, stream)
            if k in self._sent_open:  # a partial line already went out: this ends it
                self._sent_open.discard(k)
                if s.startswith("\n"):
                    s = s[1:]
                    if not s:
                        return
            text = self._partial.pop(k, "") + s
            *lines, rest = text.split("\n")
            if rest:
                self._partial[k] = rest
                schedule = not self._flush_due
                self._flush_due = True
            else:
                schedule = False
        now = time.time()
        for line in lines:
            self.send(LogLine(inv_id, now, stream, None, cut(line)))
        if schedule:
            self._call(self._flush_partial)

    def _flush_partial(self) -> None:
        with self._lock:
            partial, self._partial = self._partial, {}
            self._flush_due = False
            self._sent_open.update(partial)
        now = time.time()
        for (inv_id, stream), text in partial.items():
            self.send(LogLine(inv_id, now, stream, None, cut(text)))

    def send(self, line: LogLine) -> None:
        if threading.get_ident() == self._loop_thread:
            self._deliver(line)
        else:
            self._call(self._deliver, line)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed (shutdown): nobody to tell
            pass

    def _deliver(self, line: LogLine) -> None:
        self._local.busy = True
        try:
            self._sink(line)
        finally:
            self._local.busy = False
