"""`durable tui`: a keyboard-first terminal UI over a runtime's admin API.

Four views (Textual modes), each a screen stack: invocations (and one invocation's
journal pushed on top), pending awakeables and promises, object state, the log. The app
polls the runtime's ``/api/events`` (which doubles as the liveness check); when a call
finds no runtime it shows a banner on every screen and keeps polling until the runtime
answers again. Every key binding is also a command in the palette (``ctrl+p``).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.signal import Signal

from .api import AdminApi, ApiError, Unreachable
from .messages import LogLine
from .screens import AwakeablesScreen, HelpScreen, InvocationsScreen, LogScreen, StateScreen

__all__ = ["TuiApp", "Outage"]


@dataclass(frozen=True)
class Outage:
    """The runtime stopped answering: since when, why, how many polls failed."""

    error: str
    since: str  # HH:MM:SS
    attempts: int = 1  # the app's polls that failed


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TuiApp(App[None]):
    """The terminal UI of one runtime (``url``: its admin API)."""

    CSS_PATH = "tui.tcss"
    TITLE = "durable"
    MODES = {
        "invocations": InvocationsScreen,
        "awakeables": AwakeablesScreen,
        "state": StateScreen,
        "log": LogScreen,
    }
    DEFAULT_MODE = "invocations"
    BINDINGS = [
        # the top bar shows the views and their keys: not the footer
        Binding("i", "switch_mode('invocations')", "Invocations", show=False, tooltip="The list"),
        Binding("a", "switch_mode('awakeables')", "Awakeables", show=False, tooltip="Pending ones"),
        Binding("s", "switch_mode('state')", "State", show=False, tooltip="Object state by key"),
        Binding("l", "switch_mode('log')", "Log", show=False, tooltip="Reload events and errors"),
        Binding("question_mark", "help", "Keys", key_display="?", tooltip="Every key binding"),
        Binding("ctrl+p", "command_palette", "Commands", show=False),
        Binding("q", "quit", "Quit", tooltip="Leave the TUI"),
    ]

    connected: reactive[bool] = reactive(False)
    outage: reactive[Outage | None] = reactive(None)
    services_error: reactive[str | None] = reactive(None)
    #: why the app does not load: ``error``, ``summary``, ``since`` (the admin API's)
    app_error: reactive[dict[str, Any] | None] = reactive(None)
    store_degraded: reactive[str | None] = reactive(None)  # the runtime's console says

    def __init__(
        self,
        url: str,
        *,
        interval: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], datetime] = _utc_now,
        embedded: bool = False,
        cluster: str | None = None,
    ) -> None:
        super().__init__()
        self.api = AdminApi(url, transport)
        #: the Restate cluster's admin URL when the TUI looks at one (``--restate``)
        self.cluster = cluster
        self.interval = interval
        self.now = now
        self.embedded = embedded
        self.log_lines: list[LogLine] = []
        self.log_signal: Signal[LogLine] = Signal(self, "log")
        self.services: dict[str, dict[str, Any]] = {}
        self._boot: str | None = None
        self._seq = 0
        self._events_endpoint = True
        self._poll_error: str | None = None

    # -- lifecycle
    def on_mount(self) -> None:
        if self.cluster:
            self.add_log(f"watching the Restate cluster at {self.cluster}", "tui")
            self.add_log(
                "a Restate cluster has no event log to show here (reloads, handler output): "
                "this view shows what the TUI did; Restate's own logs are on its nodes",
                "tui",
            )
            self._events_endpoint = False
        else:
            self.add_log(f"watching the runtime at {self.api.url}", "tui")
        self.poll()
        self.set_interval(self.interval, self.poll)
        if self.embedded:
            self.begin_capture_print(self)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, self.exit)

    async def on_unmount(self) -> None:
        await self.api.aclose()

    def on_print(self, event: events.Print) -> None:
        """``durable dev --tui --inline``: what handlers print goes to the log."""
        for line in event.text.splitlines():
            if line.strip():
                self.add_log(line, "output")

    # -- the log
    def add_log(self, message: str, level: str = "info", at: str | None = None) -> None:
        line = LogLine(at or self.now().strftime("%H:%M:%S"), level, message)
        self.log_lines.append(line)
        del self.log_lines[:-2000]
        self.log_signal.publish(line)

    # -- the runtime's liveness and events
    @work(exclusive=True, group="poll")
    async def poll(self) -> None:
        try:
            body = await self._events()
            if self.outage is not None or not self.services or body and body["events"]:
                await self.load_services()
        except Unreachable as e:
            self.lost(e.message)
            return
        except ApiError as e:
            if e.message != self._poll_error:  # said once, not every second
                self.add_log(f"the runtime answered: {e.message}", "error")
            self._poll_error = e.message
        else:
            self._poll_error = None
        self.found()

    async def _events(self) -> dict[str, Any] | None:
        """New events (the log), or None from a runtime without ``/api/events``."""
        if self._events_endpoint:
            try:
                body = await self.api.events(self._seq)
            except ApiError as e:
                if e.status != 404:
                    raise
                self._events_endpoint = False  # an older runtime: /health tells it is up
            else:
                self._take_events(body)
                return body
        if self.cluster:  # its /health answers from memory: a read reaches Restate
            await self.load_services()
        else:
            await self.api.health()
        return None

    def _take_events(self, body: dict[str, Any]) -> None:
        if body["boot"] != self._boot:
            if self._boot is not None:
                self.add_log("the runtime restarted", "tui")
            self._boot = body["boot"]
            if self._seq:  # numbered from 1 again: read them from the start next time
                self._seq = 0
                return
        for e in body["events"]:
            if e["seq"] > self._seq:
                self.add_log(e["message"], e["level"], e["at"].partition("T")[2][:8])
                self._seq = e["seq"]
                if e["message"].startswith("store degraded"):
                    self.store_degraded = e["message"]
                elif e["message"].startswith("the store takes writes again"):
                    self.store_degraded = None

    async def load_services(self) -> None:
        body = await self.api.services()
        self.services = {s["name"]: s for s in body.get("services", [])}
        error = body.get("error")
        if error != self.services_error and error and not self._events_endpoint:
            self.add_log(f"the app failed to load: {error}", "error")
        self.services_error = error
        self.app_error = body.get("app_error") or (
            {"error": error, "summary": error.splitlines()[0], "since": None} if error else None
        )

    def lost(self, error: str, count: bool = True) -> None:
        """A call found no runtime (``count``: the app's own poll, one attempt)."""
        if self.outage is None:
            self.outage = Outage(error, self.now().strftime("%H:%M:%S"), int(count))
            self.add_log(f"lost the {self.target_name}: {error}", "error")
        elif count:
            self.outage = replace(self.outage, error=error, attempts=self.outage.attempts + 1)
        self.connected = False

    def found(self) -> None:
        if self.outage is not None:
            self.add_log(f"the {self.target_name} at {self.api.url} answers again", "tui")
            self.outage = None
        self.connected = True

    @property
    def target_name(self) -> str:
        """What the TUI looks at, in words: 'runtime' or 'Restate cluster'."""
        return "Restate cluster" if self.cluster else "runtime"

    # -- keys and commands
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every enabled key binding of the screen, then Textual's own commands."""
        seen = set()
        for key, active in screen.active_bindings.items():
            b = active.binding
            if not active.enabled or not b.description or b.action in seen:
                continue
            if b.action in ("command_palette", "quit"):
                continue
            seen.add(b.action)
            title = f"{b.description}: {b.tooltip}" if b.tooltip else b.description
            yield SystemCommand(
                title,
                f"key {self.get_key_display(b) or key}",
                partial(self.run_action, b.action, active.node),
            )
        yield from super().get_system_commands(screen)
