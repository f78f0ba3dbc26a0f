"""What handlers printed or logged: told to the console, kept per invocation.

Lines arrive from the worker (or the inline link) as :class:`LogLine`; each is told at
once (the ``log`` event: the console, ``/api/events``, the TUI's log) and queued; once a
loop turn they go to the store as one :class:`AppendLogs`. An invocation keeps at most
:data:`MAX_LINES` lines (then one note says the rest was not kept); a line is cut at
``logcapture.MAX_LINE`` characters by the capture.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ..logcapture import LogLine
from ..store.ops import AppendLogs, LogRow

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["HandlerLogs", "MAX_LINES"]

#: lines kept per invocation (while this runtime runs)
MAX_LINES = 1000


class HandlerLogs:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._rows: list[LogRow] = []
        self._kept: dict[str, int] = {}
        # a log's order within an invocation: increasing across restarts too
        self._seq = time.time_ns() // 1000

    def add(self, line: LogLine) -> None:
        engine = self._engine
        a = engine.residency.inv.get(line.invocation_id)
        row = a.row if a is not None else None
        who = f"{row.service}/{row.handler} {row.id}" if row is not None else line.invocation_id
        level = f" {line.level}" if line.level and line.level != "INFO" else ""
        err = " (stderr)" if line.stream == "stderr" else ""
        engine.on_event(
            "log", {"id": line.invocation_id, "line": f"[{who}{level}{err}] {line.text}"}
        )
        n = self._kept.get(line.invocation_id, 0)
        if n > MAX_LINES:
            return
        self._kept[line.invocation_id] = n + 1
        text = line.text
        stream, lvl = line.stream, line.level
        if n == MAX_LINES:
            text = (
                f"[durable] later lines of this invocation are not kept ({MAX_LINES} at "
                "most); the console showed them"
            )
            stream, lvl = "log", "WARNING"
        attempt = row.attempt if row is not None else None
        self._seq += 1
        at = engine._now()  # the engine's clock (virtual in durable.testing)
        if not self._rows:
            asyncio.get_running_loop().call_soon(self._flush)
        self._rows.append((line.invocation_id, at, self._seq, attempt, stream, lvl, text))

    def _flush(self) -> None:
        rows, self._rows = self._rows, []
        if rows:
            self._engine.store.write_nowait([AppendLogs(tuple(rows))])

    def forget(self, inv_id: str) -> None:
        """The invocation finished: its count is no longer needed."""
        self._kept.pop(inv_id, None)
