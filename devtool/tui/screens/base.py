"""What the views share: reloading from the runtime while shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import getters
from textual.css.query import NoMatches
from textual.screen import Screen

from ..api import ApiError, Unreachable

if TYPE_CHECKING:
    from ..app import TuiApp

__all__ = ["LiveScreen"]


class LiveScreen(Screen):
    """A screen whose data comes from the runtime; :meth:`load` runs every interval
    while the screen is shown, and at once when it is shown again."""

    if TYPE_CHECKING:
        app = getters.app(TuiApp)

    _bindings_on: object = None
    _last_error: str | None = None

    def on_mount(self) -> None:
        self.set_interval(self.app.interval, self.reload)

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        if self.is_current:
            self.run_worker(self._reload, exclusive=True, group="reload")  # type: ignore[arg-type]  # textual wants Coroutine[None, None, T]

    async def _reload(self) -> None:
        try:
            await self.load()
        except NoMatches:
            # the screen's widgets went while the answer was on its way (the screen was
            # popped, or the app is closing): there is nothing left to show it in
            return
        except Unreachable as e:
            self.app.lost(e.message, count=False)
        except ApiError as e:
            if e.message != self._last_error:  # said once, not at every poll
                self._last_error = e.message
                self.load_failed(e)
        else:
            self._last_error = None
            self.app.found()

    async def load(self) -> None:
        """Fetch and show (raise Unreachable or ApiError)."""

    def bindings_depend_on(self, what: object) -> None:
        """Refresh the footer's keys when ``what`` (say, the selected row's status)
        changes: rebuilding the footer on every poll would cost CPU for nothing."""
        if what != self._bindings_on:
            self._bindings_on = what
            self.refresh_bindings()

    def load_failed(self, error: ApiError) -> None:
        self.app.add_log(error.message, "error")
        self.notify(error.message, title="The runtime answered", severity="error", markup=False)
