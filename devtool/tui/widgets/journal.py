"""One invocation's journal: the entries, the selected entry, the state as of it."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.widgets import DataTable, Static

from ..format import json_view, one_line, stamp

__all__ = ["JournalTable", "EntryView", "StatePanel"]


def _mark(entry: dict[str, Any]) -> Text:
    if entry.get("failure"):
        return Text("✗", style="bold #ff5f5f")
    if entry.get("completed"):
        return Text("✓", style="#5faf5f")
    return Text("…", style="bold #d7af00")


def _cells(entry: dict[str, Any]) -> tuple[Any, ...]:
    ms = entry.get("duration_ms")
    return (
        Text(str(entry["index"])),
        Text(entry["kind"]),
        Text(one_line(entry.get("name"), 18)),
        _mark(entry),
        Text("" if not ms else f"{ms:g}"),
    )


class JournalTable(DataTable):
    """The entries, one a row (keyed by index); new entries are appended in place."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.entries: list[dict[str, Any]] = []
        self._cells: list[tuple[Any, ...]] = []

    def on_mount(self) -> None:
        for key, label in (
            ("index", "#"),
            ("kind", "kind"),
            ("name", "name"),
            ("done", ""),
            ("ms", "ms"),
        ):
            self.add_column(label, key=key)

    @property
    def selected(self) -> dict[str, Any] | None:
        if not self.entries or not 0 <= self.cursor_row < len(self.entries):
            return None
        return self.entries[self.cursor_row]

    def show(self, entries: list[dict[str, Any]]) -> None:
        cells = [_cells(e) for e in entries]
        same_start = [e["index"] for e in entries[: len(self.entries)]] == [
            e["index"] for e in self.entries
        ]
        if not same_start or len(entries) < len(self.entries):
            self.clear()
            self._cells = []
        for pos, row in enumerate(cells):
            if pos < len(self._cells):
                if row != self._cells[pos]:
                    for (col, *_), a, b in zip(
                        self.columns.items(), self._cells[pos], row, strict=True
                    ):
                        if a != b:
                            self.update_cell(str(entries[pos]["index"]), col, b)
            else:
                self.add_row(*row, key=str(entries[pos]["index"]))
        self.entries, self._cells = entries, cells


def _section(title: str, value: Any) -> list[RenderableType]:
    return [Text(title, style="bold"), json_view(value)]


class EntryView(Static):
    """The selected entry: what it is, when, and its payload, result or failure."""

    def show(self, entry: dict[str, Any] | None, invocation: dict[str, Any]) -> None:
        if entry is None:
            self.update("")
            return
        head = Text.assemble(
            (f"#{entry['index']} {entry['kind']}", "bold"),
            (f" {entry['name']!r}" if entry.get("name") else "", ""),
            ("  completed" if entry.get("completed") else "  not completed", "dim"),
        )
        parts: list[RenderableType] = [head]
        times = stamp(entry.get("created_at"))
        if entry.get("duration_ms"):
            times += f" · took {entry['duration_ms']:g} ms"
        if times:
            parts.append(Text(times, style="dim"))
        if entry["kind"] == "input":
            parts += _section("request body", invocation.get("request", {}).get("body"))
            headers = invocation.get("request", {}).get("headers")
            if headers:
                parts += _section("headers", headers)
        elif entry["kind"] == "output" and invocation.get("failure"):
            parts += _section("failure", invocation["failure"])
        else:
            if entry.get("payload") is not None:
                parts += _section("payload", entry["payload"])
            if entry.get("result") is not None:
                parts += _section("result", entry["result"])
            if entry.get("failure"):
                parts += _section("failure", entry["failure"])
            if len(parts) <= 2:
                parts.append(Text("no payload", style="dim"))
        self.update(Group(*parts))


def _value(value: Any) -> str:
    """One line when short; else indented JSON starting on the next line."""
    text = json.dumps(value, ensure_ascii=False)
    if len(text) <= 48:
        return text
    return "\n" + textwrap.indent(json.dumps(value, ensure_ascii=False, indent=2), "    ")


class StatePanel(Static):
    """An object's state as a list of ``name = value``; what changed is marked."""

    def show(
        self,
        state: dict[str, Any] | None,
        before: dict[str, Any] | None = None,
        empty: str = "no state",
    ) -> None:
        if state is None:
            self.update(Text(empty, style="dim"))
            return
        before = state if before is None else before
        lines = Text()
        for name in sorted(set(state) | set(before)):
            if name not in state:
                lines.append("- ", style="bold #d75f5f")
                lines.append(f"{name} = {_value(before[name])}\n", style="strike dim")
                continue
            if name not in before:
                mark, look = "+ ", "bold #5faf5f"
            elif before[name] != state[name]:
                mark, look = "~ ", "bold #d7af00"
            else:
                mark, look = "  ", ""
            lines.append(mark, style=look)
            lines.append(name, style="bold" if look else "")
            lines.append(f" = {_value(state[name])}\n")
        if not lines.plain:
            lines = Text(empty, style="dim")
        lines.rstrip()
        self.update(lines)
