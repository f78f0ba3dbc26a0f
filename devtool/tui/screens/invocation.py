"""One invocation: its journal entry by entry, the object's state as of the selected
entry, and the actions (restart from the selected entry among them); ``w`` swaps the
journal for its timeline (every entry a bar), ``T`` opens its whole call tree, ``o``
the invocation the selected entry called or sent to (or, at entry 0, its caller)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Static

from ...lifecycle import TERMINAL
from ...timeline import of_invocation
from ..api import ApiError
from ..format import one_line, stamp, status_text, target
from ..widgets import (
    ConnectionBanner,
    EntryView,
    JournalTable,
    StatePanel,
    TimelineTable,
    TopBar,
)
from .actions import allowed, confirm_action
from .base import LiveScreen
from .dialogs import RestartDialog, TextDialog

__all__ = ["InvocationScreen"]


def errors_text(inv: dict[str, Any]) -> str:
    """Every failed attempt in one line, then the last stack trace."""
    attempts = inv.get("attempts") or []
    lines = [
        f"#{a['attempt']}  {stamp(a.get('started_at'))}  {a['outcome']:<11} "
        f"{a.get('location') or '?'}  {a['error'].splitlines()[0] if a['error'] else ''}"
        for a in attempts
    ]
    stack = next((a["stack"] for a in reversed(attempts) if a.get("stack")), None)
    stack = stack or inv.get("last_error_stack") or inv.get("last_error") or "no error"
    return "\n".join([*lines, "", "last stack trace:", stack] if lines else [stack])


def logs_text(inv: dict[str, Any]) -> str:
    """What the handler printed or logged, a line each."""
    if inv.get("restate") is not None and not inv.get("logs"):  # a cluster's invocation
        return (
            "Restate keeps no handler logs: read them where the deployment runs "
            "(its output, or your log collector)."
        )
    return "\n".join(
        f"{stamp(g.get('at'))} #{g.get('attempt')}"
        + (f" {g['level']}" if g.get("level") else "")
        + (" stderr" if g.get("stream") == "stderr" else "")
        + f"  {g['message']}"
        for g in inv.get("logs") or []
    )


class InvocationScreen(LiveScreen):
    """Shows ``invocation_id``; ↑/↓ step through its journal."""

    BINDINGS = [
        Binding("escape,backspace", "back", "Back", tooltip="Back to the list"),
        Binding("c", "act('cancel')", "Cancel", tooltip="Cancel the invocation"),
        Binding("k", "act('kill')", "Kill", tooltip="Kill the invocation"),
        Binding("p", "act('pause')", "Pause", tooltip="Pause the invocation"),
        Binding("r", "act('resume')", "Resume", tooltip="Resume the invocation"),
        Binding("t", "restart", "Restart here", tooltip="Restart from the selected entry"),
        Binding("delete", "act('purge')", "Purge", show=False, tooltip="Delete a finished one"),
        Binding("e", "error", "Errors", tooltip="Every failed attempt, the last stack trace"),
        Binding("o", "logs", "Logs", tooltip="What the handler printed or logged"),
        Binding("w", "timeline", "Timeline", show=False, tooltip="Journal or timeline (bars)"),
        Binding("T", "tree", "Call tree", show=False, tooltip="The whole call tree, as bars"),
        Binding("f", "follow", "Follow link", show=False, tooltip="The callee, or the caller"),
        Binding("tab", "app.focus_next", "Next panel", show=False),
    ]

    def __init__(self, invocation_id: str) -> None:
        super().__init__()
        self.invocation_id = invocation_id
        self.invocation: dict[str, Any] | None = None
        self.gone = False

    def compose(self) -> ComposeResult:
        yield TopBar(self.app.current_mode)
        yield ConnectionBanner()
        yield Static(self.invocation_id, id="summary", markup=False)
        with Horizontal(id="body"):
            yield JournalTable(id="journal")
            yield TimelineTable(id="timeline")
            with Vertical(id="side"):
                with VerticalScroll(id="entry-box"):
                    yield EntryView(id="entry")
                with VerticalScroll(id="state-box"):
                    yield StatePanel(id="state")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(JournalTable).border_title = "journal"
        self.query_one(TimelineTable).border_title = "timeline (start → completion)"
        self.query_one("#entry-box").border_title = "entry"
        self.query_one("#state-box").border_title = "state"
        self.query_one(JournalTable).focus()

    async def load(self) -> None:
        if self.gone:
            return
        inv = await self.app.api.invocation(self.invocation_id)
        first = self.invocation is None
        self.invocation = inv
        self.query_one("#summary", Static).update(self._summary(inv))
        journal = self.query_one(JournalTable)
        journal.show(inv["journal"])
        if first and inv["journal"]:
            journal.move_cursor(row=0, animate=False)
        if self.has_class("-timeline"):
            self._show_timeline()
        self.show_entry()

    def _show_timeline(self) -> None:
        if self.invocation is not None:
            now = datetime.now(UTC).replace(tzinfo=None)
            self.query_one(TimelineTable).show(of_invocation(self.invocation, now))

    def load_failed(self, error: ApiError) -> None:
        if error.status == 404:
            self.gone = True
            self.query_one("#summary", Static).update(
                Text(f"{self.invocation_id}: {error.message} (purged?)", style="bold #ff5f5f")
            )
            return
        super().load_failed(error)

    def _summary(self, inv: dict[str, Any]) -> Text:
        text = Text.assemble(
            (inv["id"], "bold"),
            "  ",
            status_text(inv["status"], inv.get("failure")),
            (f"  attempt {inv['attempt']}" if inv.get("attempt", 1) > 1 else "", ""),
            "\n",
            target(inv),
            (f"  created {stamp(inv.get('created_at'))}", "dim"),
        )
        line = ""
        if inv.get("failure"):
            line = f"failed: {inv['failure'].get('code')} {inv['failure'].get('message')}"
        elif inv.get("last_error") and inv["status"] not in TERMINAL:
            line = f"error: {inv['last_error'].splitlines()[0]}"
            if not inv.get("attempts"):
                line += " (e: stack)"
        elif inv.get("waits_on"):
            line = f"waiting on {inv['waits_on']}"
        elif inv["status"] == "completed":
            line = f"output: {one_line(inv.get('output_value'), 200)}"
        if inv.get("restarted_from"):
            line += f"  (restarted from {inv['restarted_from']})"
        if inv.get("origin"):
            o = inv["origin"]
            line += f"  (pulled from {o['cluster']}: {o['remote_id']}, {o['remote_status']} there)"
        if inv.get("caller"):
            c = inv["caller"]
            how = "called" if c["kind"] == "call" else "sent"
            line += f"  ({how} by {c['id']} entry {c['entry']}; o: open it, T: tree)"
        if line:
            text.append(
                "\n" + line, style="#ff5f5f" if line.startswith(("failed", "error")) else "dim"
            )
        notes = []
        attempts, logs = inv.get("attempts") or [], inv.get("logs") or []
        if attempts:
            last = attempts[-1]
            where = f" at {last['location']}" if last.get("location") else ""
            n = len(attempts)
            notes.append(f"{n} failed attempt{'s' if n != 1 else ''}, last{where} (e)")
        if logs:
            notes.append(f"{len(logs)} log line{'s' if len(logs) != 1 else ''} (o)")
        if notes:  # on the third line: the summary is three lines high
            text.append((" · " if line else "\n") + " · ".join(notes), style="dim")
        return text

    # -- stepping through the journal
    @on(DataTable.RowHighlighted, "#journal")
    def _entry_highlighted(self) -> None:
        self.show_entry()

    def show_entry(self) -> None:
        inv = self.invocation
        if inv is None:
            return
        journal = self.query_one(JournalTable)
        entry = journal.selected
        self.bindings_depend_on(
            (inv["status"], bool(inv.get("last_error")), entry and entry["index"])
        )
        self.query_one(EntryView).show(entry, inv)
        box = self.query_one("#state-box")
        panel = self.query_one(StatePanel)
        if entry is None:
            return
        if inv.get("service_kind") not in ("object", "workflow"):
            box.border_title = "state"
            panel.show(None, empty=f"{inv['service']} is a service: it has no state")
            return
        pos = journal.cursor_row
        state = entry.get("state")
        if state is None and self.app.cluster:
            box.border_title = f"state of {inv['service']}/{inv.get('key')}"
            panel.show(
                None,
                empty="not available on a Restate cluster: it keeps a key's state now, not "
                "as of each entry (the State view, s, shows it now)",
            )
            return
        before = inv["journal"][pos - 1].get("state") if pos > 0 else {}
        box.border_title = (
            f"state of {inv['service']}/{inv.get('key')} after entry {entry['index']}"
        )
        panel.show(state, before, empty="no state yet")

    # -- actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        inv = self.invocation
        if action == "act":
            return inv is not None and allowed(str(parameters[0]), inv) or None
        if action == "restart":
            tables = self.query(JournalTable)  # none while the screen is taken down
            entry = tables.first().selected if inv and tables else None
            return entry is not None and entry["index"] >= 1 and entry["kind"] != "output" or None
        if action == "error":
            return (
                bool(
                    inv
                    and (
                        inv.get("attempts") or inv.get("last_error_stack") or inv.get("last_error")
                    )
                )
                or None
            )
        if action == "logs":  # on a cluster: to say Restate keeps none
            return bool(inv and (inv.get("logs") or inv.get("restate") is not None)) or None
        return True

    def action_back(self) -> None:
        self.dismiss()

    def action_timeline(self) -> None:
        on = not self.has_class("-timeline")
        self.set_class(on, "-timeline")
        if on:
            self.call_after_refresh(self._show_timeline)  # once it has its width
            self.query_one(TimelineTable).focus()
        else:
            self.query_one(JournalTable).focus()

    def action_tree(self) -> None:
        from .calltree import CallTreeScreen  # the two screens open each other

        self.app.push_screen(CallTreeScreen(self.invocation_id))

    def action_follow(self) -> None:
        inv = self.invocation
        if inv is None:
            return
        if self.has_class("-timeline"):
            bar = self.query_one(TimelineTable).selected
            link = bar.link if bar else None
        else:
            entry = self.query_one(JournalTable).selected
            link = entry.get("child_id") if entry else None
        if link is None and inv.get("caller"):
            link = inv["caller"]["id"]
        if link:
            self.app.push_screen(InvocationScreen(link))
        else:
            self.notify("this entry starts no invocation, and nothing called this one")

    def action_act(self, action: str) -> None:
        if self.invocation is not None:
            confirm_action(self, self.invocation, action)

    def action_error(self) -> None:
        inv = self.invocation
        if inv is not None:
            self.app.push_screen(TextDialog(f"Errors of {inv['id']}", errors_text(inv)))

    def action_logs(self) -> None:
        inv = self.invocation
        if inv is not None:
            self.app.push_screen(TextDialog(f"Logs of {inv['id']}", logs_text(inv)))

    def action_restart(self) -> None:
        inv = self.invocation
        entry = self.query_one(JournalTable).selected
        if inv is None or entry is None:
            return

        async def run(n: int, kill: bool) -> Any:
            return await self.app.api.restart(inv["id"], n, kill)

        def done(result: Any) -> None:
            if result is None:
                return
            self.app.add_log(
                f"restarted {inv['id']} from entry {result['from']} as {result['id']}", "tui"
            )
            self.notify(f"restarted as {result['id']}", title="Restart", markup=False)
            self.app.switch_screen(InvocationScreen(result["id"]))

        self.app.push_screen(RestartDialog(inv, entry["index"], run), done)
