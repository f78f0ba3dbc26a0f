"""The actions on an invocation, shared by the list and the invocation's own screen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import LiveScreen
from .dialogs import ConfirmDialog

__all__ = ["ACTIONS", "allowed", "confirm_action"]

#: what each action does, said in its confirmation
ACTIONS = {
    "cancel": "It stops at its next await and ends as cancelled (a handler can clean up).",
    "kill": "It ends at once as killed: nothing more of it runs, callers get an error.",
    "pause": "It stops before its next step until you resume it.",
    "resume": "It runs again now, replaying its journal.",
    "purge": "Its row and its journal are deleted for good.",
}


def allowed(action: str, invocation: Mapping[str, Any]) -> bool:
    """Whether the admin API offers ``action`` for the invocation (its ``actions`` list,
    decided by the runtime for the invocation's status)."""
    return action in invocation.get("actions", ())


def confirm_action(screen: LiveScreen, invocation: dict[str, Any], action: str) -> None:
    """Ask, then do ``action``; the screen reloads and the log says what happened."""
    app = screen.app
    inv_id = invocation["id"]

    async def run() -> Any:
        return await app.api.act(inv_id, action)

    def done(result: Any) -> None:
        if result is None:
            return
        said = result.get("message") or result.get("status", "")
        app.add_log(f"{action} {inv_id}: {said}", "tui")
        screen.notify(f"{inv_id}: {said}", title=action.capitalize(), markup=False)
        screen.reload()

    app.push_screen(
        ConfirmDialog(
            f"{action.capitalize()} {inv_id}?",
            f"{invocation['service']}/{invocation['handler']}"
            + (f" [{invocation['key']}]" if invocation.get("key") else "")
            + f" is {invocation['status']}. {ACTIONS[action]}",
            run,
            f"{action.capitalize()} it",
        ),
        done,
    )
