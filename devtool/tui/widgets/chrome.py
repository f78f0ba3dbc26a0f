"""What every screen shows around its content: the top bar and the outage banner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import getters
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.markup import escape
from textual.widgets import Static

if TYPE_CHECKING:
    from ..app import TuiApp

__all__ = ["TopBar", "ConnectionBanner", "VIEWS"]

#: the views (app modes): name, title, key
VIEWS = (
    ("invocations", "Invocations", "i"),
    ("awakeables", "Awakeables", "a"),
    ("state", "State", "s"),
    ("log", "Log", "l"),
)


class TopBar(Horizontal):
    """The views (clickable), the runtime's address and whether it answers."""

    if TYPE_CHECKING:
        app = getters.app(TuiApp)

    def __init__(self, active: str) -> None:
        super().__init__()
        self.active = active

    def compose(self) -> ComposeResult:
        yield Static(self._views(), id="views")
        yield Static("", id="conn")

    def on_mount(self) -> None:
        self.watch(self.app, "outage", self._update, init=False)
        self.watch(self.app, "connected", self._update, init=False)
        self.watch(self.app, "store_degraded", self._update, init=False)
        self.watch(self.app, "services_error", self._update, init=True)

    def _views(self) -> str:
        parts = ["[b]durable[/b]"]
        for name, title, key in VIEWS:
            style = "reverse" if name == self.active else ""
            label = f" {escape(title)} [dim]{key}[/dim] "
            click = f"@click=app.switch_mode('{name}')"
            parts.append(f"[{style} {click}]{label}[/]" if style else f"[{click}]{label}[/]")
        return " ".join(parts)

    def _update(self, _value: object = None) -> None:
        app = self.app
        host = app.api.url.split("://", 1)[-1]
        if app.cluster:
            host = f"Restate cluster {host}"
        if app.outage is not None:
            conn = f"[b $error]✖ {escape(host)}[/]"
        elif app.connected:
            conn = f"[$success]●[/] {escape(host)}"
        else:
            conn = f"[$warning]○[/] {escape(host)}"
        if app.services_error:
            conn = "[b $error @click=app.switch_mode('log')]⚠ app does not load[/] " + conn
        if getattr(app, "store_degraded", None):
            conn = "[b $error @click=app.switch_mode('log')]⚠ store degraded[/] " + conn
        self.query_one("#conn", Static).update(conn)


class ConnectionBanner(Static):
    """Shown while the runtime does not answer (the app retries on its own), or while
    the runtime's app does not load (its error, since when)."""

    if TYPE_CHECKING:
        app = getters.app(TuiApp)

    def on_mount(self) -> None:
        self.watch(self.app, "outage", self._update, init=True)
        self.watch(self.app, "app_error", self._update, init=False)

    def _update(self, _value: object = None) -> None:
        app = self.app
        outage, broken = app.outage, app.app_error
        self.set_class(outage is not None or broken is not None, "-visible")
        if outage is None:
            if broken is None:
                self.update("")
                return
            since = broken.get("since") or ""
            when = f" since {since.partition('T')[2][:8]}" if "T" in since else ""
            self.update(
                f"[b]The app does not load{when}[/b]: {escape(broken['summary'])}. "
                "Invocations wait (nothing is lost); fix the file and it reloads."
            )
            return
        self.update(
            f"[b]The {app.target_name} at {escape(app.api.url)} does not answer[/b] "
            f"({escape(outage.error)}). Reconnecting every "
            f"{app.interval:g} s (attempt {max(1, outage.attempts)}); "
            f"what you see is from {outage.since}."
        )
