"""Dialogs: confirm an action, restart from an entry, resolve or reject, read an error.

Each dialog that changes something sends its own request: an error keeps it open and
says why; success dismisses it with the runtime's answer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from ...lifecycle import TERMINAL
from ..api import ApiError, Unreachable

__all__ = [
    "ActionDialog",
    "ConfirmDialog",
    "RestartDialog",
    "ResolveDialog",
    "RejectDialog",
    "TextDialog",
]


class ActionDialog(ModalScreen[Any]):
    """A title, a text, fields, an error line, and buttons; :meth:`send` on submit."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    VERB = "OK"
    FOCUS = "#ok"  # what has the focus first

    def __init__(self, title: str, text: str = "") -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.text = text
        self.sending = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title", markup=False)
            if self.text:
                yield Static(self.text, id="dialog-text", markup=False)
            yield from self.fields()
            yield Static("", id="error", markup=False)
            with Horizontal(id="buttons"):
                yield Button(self.VERB, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def fields(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.query_one(self.FOCUS).focus()

    def show_error(self, message: str) -> None:
        error = self.query_one("#error", Static)
        error.update(message)
        error.set_class(bool(message), "-shown")

    def values(self) -> dict[str, Any]:
        """The fields, checked; raise ValueError with what to fix."""
        return {}

    async def send(self, *args: Any, **values: Any) -> Any:
        raise NotImplementedError

    def submit(self) -> None:
        if self.sending:
            return
        try:
            values = self.values()
        except ValueError as e:
            self.show_error(str(e))
            return
        self.sending = True
        self.show_error("")
        self.run_worker(partial(self._send, values), exclusive=True)  # type: ignore[arg-type]  # textual wants Coroutine[None, None, T]

    async def _send(self, values: dict[str, Any]) -> None:
        try:
            result = await self.send(**values)
        except ApiError as e:
            self.show_error(e.message)
        except Unreachable as e:
            self.show_error(f"{e.message}: nothing was done; try again when it is back")
        else:
            self.dismiss(result)
        finally:
            self.sending = False

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        self.submit()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ActionDialog):
    """Yes or no to one request."""

    BINDINGS = [
        Binding("y", "yes", "Yes"),
        Binding("n,escape", "dismiss_none", "No"),
    ]

    def __init__(self, title: str, text: str, run: Callable[[], Awaitable[Any]], verb: str) -> None:
        super().__init__(title, text)
        self.run = run
        self.VERB = verb

    async def send(self) -> Any:
        return await self.run()

    def action_yes(self) -> None:
        self.submit()


class RestartDialog(ActionDialog):
    """Restart an invocation from entry N (with today's code), killing it if it runs."""

    BINDINGS = [
        Binding("y", "yes", "Restart"),
        Binding("n,escape", "dismiss_none", "No"),
    ]
    VERB = "Restart"

    def __init__(
        self, invocation: dict[str, Any], entry: int, run: Callable[[int, bool], Awaitable[Any]]
    ) -> None:
        self.invocation = invocation
        self.entry = entry
        self.run = run
        self.running = invocation["status"] not in TERMINAL
        kept = "entry 0 (the input) is kept" if entry == 1 else f"entries 0 to {entry - 1} are kept"
        super().__init__(
            f"Restart {invocation['id']} from entry {entry}?",
            f"A new invocation of {invocation['service']}/{invocation['handler']}: {kept}, "
            "the rest runs with today's code. Object state is not rewound.",
        )

    def fields(self) -> ComposeResult:
        if self.running:
            yield Checkbox(
                f"kill the original first (it is {self.invocation['status']})",
                value=True,
                id="kill",
            )

    def values(self) -> dict[str, Any]:
        kill = self.query_one("#kill", Checkbox).value if self.running else False
        return {"kill": kill}

    async def send(self, kill: bool) -> Any:
        return await self.run(self.entry, kill)

    def action_yes(self) -> None:
        self.submit()


class ResolveDialog(ActionDialog):
    """Type the JSON value an awakeable or promise is resolved with; it is checked
    before anything is sent."""

    VERB = "Resolve"
    FOCUS = "#value"

    def __init__(self, item: dict[str, Any], run: Callable[[str], Awaitable[Any]]) -> None:
        self.item = item
        self.run = run
        what = (
            f"promise {item['name']!r} of {item['service']}/{item['key']}"
            if "name" in item
            else f"awakeable {item['id']}"
        )
        super().__init__(
            f"Resolve {what}",
            f"{item.get('service')}/{item.get('handler')} {item.get('invocation_id')} waits on it "
            f"(entry {item.get('entry_index')}). Type a JSON value and press enter.",
        )

    def fields(self) -> ComposeResult:
        yield Input(placeholder='JSON: {"ok": true}, "yes", 42, null', id="value")
        yield Static("", id="hint", markup=False)

    @on(Input.Changed, "#value")
    def _check(self, event: Input.Changed) -> None:
        hint = self.query_one("#hint", Static)
        text = event.value.strip()
        if not text:
            hint.update("")
            return
        try:
            json.loads(text)
        except ValueError as e:
            hint.update(f"not JSON yet: {e}")
            hint.set_class(True, "-bad")
        else:
            hint.update("valid JSON")
            hint.set_class(False, "-bad")

    @on(Input.Submitted, "#value")
    def _submitted(self) -> None:
        self.submit()

    def show_error(self, message: str) -> None:
        if message:
            self.query_one("#hint", Static).update("")
        super().show_error(message)

    def values(self) -> dict[str, Any]:
        text = self.query_one("#value", Input).value.strip()
        if not text:
            raise ValueError("type a JSON value (null for none): nothing was sent")
        try:
            json.loads(text)
        except ValueError as e:
            raise ValueError(f"not valid JSON ({e}): nothing was sent") from None
        return {"text": text}

    async def send(self, text: str) -> Any:
        return await self.run(text)


class RejectDialog(ActionDialog):
    """Reject an awakeable or promise with a message and an HTTP error code."""

    VERB = "Reject"
    FOCUS = "#message"

    def __init__(self, item: dict[str, Any], run: Callable[[str, int], Awaitable[Any]]) -> None:
        self.item = item
        self.run = run
        what = f"promise {item['name']!r}" if "name" in item else f"awakeable {item['id']}"
        super().__init__(
            f"Reject {what}",
            f"{item.get('service')}/{item.get('handler')} {item.get('invocation_id')} gets a "
            "terminal error with this message and code.",
        )

    def fields(self) -> ComposeResult:
        yield Input(value="rejected by hand", placeholder="message", id="message")
        yield Input(value="500", placeholder="code: 400 to 599", id="code")

    @on(Input.Submitted, "#message")
    def _next(self) -> None:
        self.query_one("#code", Input).focus()

    @on(Input.Submitted, "#code")
    def _submitted(self) -> None:
        self.submit()

    def values(self) -> dict[str, Any]:
        message = self.query_one("#message", Input).value.strip()
        code_text = self.query_one("#code", Input).value.strip()
        if not message:
            raise ValueError("give a message")
        if not code_text.isdigit() or not 400 <= int(code_text) <= 599:
            raise ValueError("the code is an HTTP error status, 400 to 599")
        return {"message": message, "code": int(code_text)}

    async def send(self, message: str, code: int) -> Any:
        return await self.run(message, code)


class TextDialog(ModalScreen[None]):
    """A long text to read (an error's stack trace); escape closes it."""

    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Label(self.title_text, id="dialog-title", markup=False)
            with VerticalScroll(id="dialog-scroll"):
                yield Static(self.text, markup=False)
