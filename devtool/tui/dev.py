"""`durable dev --tui`: the runtime and the TUI in one process and one terminal.

The runtime runs on its own thread and event loop (so a slow frame never stalls it);
the TUI, on the main thread, reaches it over HTTP like any other client. What the
runtime would print (reload events, failures, what the worker prints, log records,
what ``--inline`` handlers print) goes to its event log instead, which the TUI's log
panel follows. Quitting the TUI stops the runtime; its last lines are printed then.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sys
import threading
import time

from durable.logging import current_executor

from ..errors import DevtoolError
from ..runtime import Runtime, RuntimeOptions

__all__ = ["run_dev_tui"]

_START_TIMEOUT = 60.0


class _RecordsToEvents(logging.Handler):
    """Log records (warnings and up) into the runtime's event log; a handler's own
    records (``--inline``) are its logs already (``logcapture``)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(logging.WARNING)
        self.runtime = runtime

    def emit(self, record: logging.LogRecord) -> None:
        if current_executor.get() is not None:
            return
        try:
            self.runtime.say(self.format(record), "error")
        except Exception:
            self.handleError(record)


class _LinesToEvents(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` meanwhile: what is printed becomes events, a line
    at a time, instead of garbling the TUI's screen."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if line.strip():
                self.runtime.say(line.rstrip(), "output")
        return len(text)


class _RuntimeThread(threading.Thread):
    """The runtime on its own event loop."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(name="durable-runtime", daemon=True)
        self.runtime = runtime
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.loop.run_until_complete(self.runtime.run())
        except BaseException as e:  # the main thread reports it
            self.error = e
        finally:
            self.loop.close()

    def wait_ready(self) -> str | None:
        """The admin URL once the runtime serves; None if it stopped first."""
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline and self.is_alive():
            if self.runtime.info is not None:
                return self.runtime.info["admin_url"]
            time.sleep(0.02)
        return None

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed already
            self.loop.call_soon_threadsafe(self.runtime.request_stop)
        self.join(timeout=30)


def run_dev_tui(opts: RuntimeOptions) -> int:
    """Run the runtime and the TUI until the TUI quits; returns the exit code."""
    from .app import TuiApp

    runtime = Runtime(opts, echo=None, embedded=True)
    thread = _RuntimeThread(runtime)
    records = _RecordsToEvents(runtime)
    logging.getLogger().addHandler(records)
    lines = _LinesToEvents(runtime)
    admin_url = None
    try:
        with contextlib.redirect_stdout(lines), contextlib.redirect_stderr(lines):
            thread.start()
            admin_url = thread.wait_ready()
            if admin_url is not None:
                TuiApp(admin_url, embedded=True).run()
    finally:
        thread.stop()
        logging.getLogger().removeHandler(records)
    if admin_url is None:
        error = thread.error
        message = str(error) if isinstance(error, DevtoolError) else repr(error)
        print(f"error: {message if error else 'the runtime did not start'}", file=sys.stderr)
        return 1
    for event in runtime.events.since(0)["events"][-5:]:
        print(f"[durable] {event['message']}")
    return 0
