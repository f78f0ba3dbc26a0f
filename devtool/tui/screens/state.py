"""Object and workflow state, browsed by service and key."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.markup import escape
from textual.widgets import Footer, Tree
from textual.widgets.tree import TreeNode

from ..widgets import ConnectionBanner, StatePanel, TopBar
from .base import LiveScreen

__all__ = ["StateScreen"]

Node = TreeNode[tuple[str, str | None]]


class StateScreen(LiveScreen):
    """Services with state on the left (expand one for its keys), the key's state on
    the right; what is expanded and selected stays live."""

    def __init__(self) -> None:
        super().__init__()
        self.service_nodes: dict[str, Node] = {}
        self.key_nodes: dict[str, dict[str, Node]] = {}

    def compose(self) -> ComposeResult:
        yield TopBar("state")
        yield ConnectionBanner()
        with Horizontal(id="state-body"):
            tree: Tree[tuple[str, str | None]] = Tree("state", id="keys")
            tree.show_root = False
            tree.guide_depth = 2
            yield tree
            with VerticalScroll(id="state-box"):
                yield StatePanel(id="state")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        tree = self.query_one(Tree)
        tree.border_title = "keys"
        self.query_one("#state-box").border_title = "state"
        self.query_one(StatePanel).show(None, empty="Pick a key: ↑/↓, enter expands a service.")
        tree.focus()

    async def load(self) -> None:
        if not self.app.services:
            await self.app.load_services()
        tree = self.query_one(Tree)
        for name, info in sorted(self.app.services.items()):
            if info.get("kind") in ("object", "workflow") and name not in self.service_nodes:
                node = tree.root.add(f"{escape(name)} ({info['kind']})", data=(name, None))
                self.service_nodes[name] = node
                self.key_nodes[name] = {}
        if tree.cursor_line < 0 and self.service_nodes:
            tree.cursor_line = 0
        for name, node in self.service_nodes.items():
            if node.is_expanded:
                await self._load_keys(name, node)
        await self._show_selected()

    async def _load_keys(self, service: str, node: Node) -> None:
        body = await self.app.api.state_keys(service)
        known = self.key_nodes[service]
        found = {k["key"]: k["entries"] for k in body.get("keys", [])}
        for key in list(known):
            if key not in found:
                known.pop(key).remove()
        for key, n in found.items():
            label = f"{escape(key)} [dim]({n})[/dim]"
            if key in known:
                known[key].set_label(label)
            else:
                known[key] = node.add_leaf(label, data=(service, key))
        node.set_label(
            f"{escape(service)} ({self.app.services.get(service, {}).get('kind', '?')}) [dim]{len(found)} keys[/dim]"
        )

    async def _show_selected(self) -> None:
        tree = self.query_one(Tree)
        node = tree.cursor_node
        panel = self.query_one(StatePanel)
        box = self.query_one("#state-box")
        if node is None or node.data is None:
            return
        service, key = node.data
        if key is None:
            box.border_title = f"{service}"
            panel.show(None, empty=f"{service}: enter shows its keys; pick one for its state.")
            return
        body = await self.app.api.state(service, key)
        box.border_title = f"state of {service}/{key}"
        panel.show(body.get("state", {}), empty="no state")

    @on(Tree.NodeExpanded, "#keys")
    def _expanded(self) -> None:
        self.reload()

    @on(Tree.NodeHighlighted, "#keys")
    def _highlighted(self) -> None:
        self.reload()
