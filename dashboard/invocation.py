"""One invocation: header, what it waits on, errors, output, request, the journal as a
timeline, the time-travel slider, and the actions a person can take on it (the ones
the admin view lists for its status: ``inv["actions"]``).

``GET /invocations/{id}`` is the page; its live part is the fragment
``_invocation.html``, which polls while the invocation is not finished (a fingerprint
makes an unchanged poll a 204). ``GET /invocations/{id}/state?entry=N`` is the
object's state just after entry N (the slider asks for it). Actions are POSTs:
``/invocations/{id}/{cancel|kill|pause|resume|purge}``, ``/restart`` (``from``,
``kill``) and ``/replay``; each answers with the refreshed fragment and a message.
Its timeline draws every entry as a bar (:mod:`durable.devtool.timeline`); the call
tree it belongs to is ``/invocations/{id}/tree`` (:mod:`.calltree`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from durable.devtool import timeline
from durable.devtool.errors import BadRequest, RequestError
from durable.devtool.lifecycle import TERMINAL
from durable.ids import is_invocation_id
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._core import Dashboard, Flash, error_message, form, redirect, small_int
from ._render import fingerprint, is_fragment_request

__all__ = ["routes"]

#: a Restate invocation id (the dashboard over a cluster; see devtool/cluster/restate)
RESTATE_ID = re.compile(r"inv_1[0-9A-Za-z]{33}")

ACTION_LABELS = {
    "cancel": "Cancel",
    "kill": "Kill",
    "pause": "Pause",
    "resume": "Resume",
    "purge": "Purge",
}
#: actions that get an in-page confirmation (no browser dialog)
CONFIRM = {
    "cancel": "The handler sees a cancellation at its next await and may compensate.",
    "kill": "Stops it at once, without compensation; calls it waits on are killed too.",
    "purge": "Deletes the invocation, its journal and its idempotency record for good.",
}


def _fingerprint(inv: dict[str, Any]) -> str:
    return fingerprint(
        [
            inv["status"],
            inv["modified_at"],
            inv["attempt"],
            inv["waits_on"],
            inv["last_error"],
            inv.get("queue_position"),
            [(e["index"], e["completed"], e["completed_at"]) for e in inv["journal"]],
            len(inv.get("attempts") or ()),
            len(inv.get("logs") or ()),
        ]
    )


def _restart_points(inv: dict[str, Any]) -> set[int]:
    """Entries a restart may start from: 1..last, all entries before completed."""
    journal = inv["journal"]
    has_output = bool(journal) and journal[-1]["kind"] == "output"
    last = len(journal) - 1 if has_output else len(journal)
    points: set[int] = set()
    for e in journal[1:]:
        if e["index"] > last:
            break
        points.add(e["index"])
        if not e["completed"]:
            break
    return points


def utcnow() -> datetime:
    """Now, as the store's naive UTC times."""
    return datetime.now(UTC).replace(tzinfo=None)


def check_id(inv_id: str) -> None:
    """A BadRequest unless ``inv_id`` has the shape of durable's or Restate's ids."""
    if not (is_invocation_id(inv_id) or RESTATE_ID.fullmatch(inv_id)):
        raise BadRequest(
            f"malformed invocation id {inv_id!r}: ids look like inv_ followed by 26 characters "
            "(durable's) or inv_1 followed by 33 (Restate's)"
        )


def routes(d: Dashboard) -> list[Route]:
    off = d.source.unavailable

    def context(inv: dict[str, Any], flash: Flash | None = None) -> dict[str, Any]:
        keyed = inv["service_kind"] in ("object", "workflow")
        return {
            "timeline": timeline.of_invocation(inv, utcnow()),
            "has_children": any(e.get("child_id") for e in inv["journal"]),
            "inv": inv,
            "flash": flash,
            "live": inv["status"] not in TERMINAL,
            "action_labels": ACTION_LABELS,
            "confirm": CONFIRM,
            "restart_points": set() if "restart" in off else _restart_points(inv),
            "timetravel": keyed and bool(inv["journal"]) and "timetravel" not in off,
            "unavailable": off,
            "v": _fingerprint(inv),
        }

    async def show(request: Request) -> Response:
        inv_id = request.path_params["id"]
        try:
            check_id(inv_id)
        except BadRequest as e:
            return d.not_found(request, e.message)
        inv = await d.source.invocation(inv_id)
        if inv is None:
            return d.not_found(request, f"unknown invocation {inv_id}: it may have been purged")
        ctx = context(inv)
        if is_fragment_request(request) and request.query_params.get("v") == ctx["v"]:
            return Response(status_code=204)
        if ctx["timetravel"] and not is_fragment_request(request):
            ctx["state_at"] = await _last_state(inv)
        return d.render(request, "invocation", ctx)

    async def _state_context(
        inv_id: str, service: str, key: str | None, entry: int
    ) -> dict[str, Any]:
        step = await d.source.state_step(service, key or "", inv_id, entry)
        after_state, old = step["state"], step["before"]
        changes: dict[str, str] = {}
        if old is not None:
            for name in set(old) | set(after_state):
                if name not in after_state:
                    changes[name] = "cleared"
                elif name not in old:
                    changes[name] = "added"
                elif old[name] != after_state[name]:
                    changes[name] = "changed"
        return {
            "entry": entry,
            "entry_kind": step["kind"] or "",
            "entry_name": step["name"],
            "entry_at": step["at"],
            "state": after_state,
            "changes": changes,
            "cleared": sorted(n for n, c in changes.items() if c == "cleared"),
            "inv_id": inv_id,
        }

    async def _last_state(inv: dict[str, Any]) -> dict[str, Any]:
        last = inv["journal"][-1]["index"]
        return await _state_context(inv["id"], inv["service"], inv["key"], last)

    async def state_at(request: Request) -> Response:
        """The slider's fragment: a key's state just after one entry (cheap: the row
        and four small reads, never the whole journal)."""
        inv_id = request.path_params["id"]
        try:
            check_id(inv_id)
            entry = small_int(request.query_params.get("entry"), 0)
        except (BadRequest, ValueError):
            return d.not_found(request, "give ?entry=N (a journal index) of a known invocation")
        d.refuse("timetravel")
        row = await d.source.invocation(inv_id)
        if row is None:
            return d.not_found(request, f"unknown invocation {inv_id}")
        if row["service_kind"] not in ("object", "workflow"):
            return d.not_found(request, f"{row['service']} is a service: it has no state")
        try:
            ctx = await _state_context(inv_id, row["service"], row["key"], max(0, entry))
        except LookupError as e:
            status = 200 if is_fragment_request(request) else 404  # htmx swaps 2xx only
            return d.render(
                request, "error", {"title": "No such entry", "message": error_message(e)}, status
            )
        return d.render(request, "state_at", {"state_at": ctx})

    async def _after_action(request: Request, inv_id: str, flash: Flash, status: int) -> Response:
        inv = await d.source.invocation(inv_id)
        if inv is None:  # purged
            if is_fragment_request(request):
                return redirect(request, "/invocations?purged=" + inv_id)
            return redirect(request, "/invocations")
        ctx = context(inv, flash)
        if is_fragment_request(request):
            return d.render(request, "invocation", ctx)
        if ctx["timetravel"]:
            ctx["state_at"] = await _last_state(inv)
        return d.render(request, "invocation", ctx, status)

    async def act(request: Request) -> Response:
        inv_id, name = request.path_params["id"], request.path_params["action"]
        if name not in ACTION_LABELS:
            return d.not_found(request, f"unknown action {name!r}")
        try:
            check_id(inv_id)
            result = await d.source.act(name, inv_id)
        except RequestError as e:
            if e.status == 404:
                return d.not_found(request, e.message)
            return await _after_action(request, inv_id, Flash("error", e.message), e.status)
        if name == "purge":
            return redirect(request, "/invocations")
        said = result["message"]
        text = f"{said[:1].upper()}{said[1:]}."
        return await _after_action(request, inv_id, Flash("ok", text), 200)

    async def restart(request: Request) -> Response:
        inv_id = request.path_params["id"]
        data = await form(request)
        try:
            check_id(inv_id)
            try:
                n = small_int(data.get("from", ""))
            except ValueError:
                raise BadRequest("give the entry to restart from") from None
            d.refuse("restart")
            result = await d.source.restart(inv_id, n, data.get("kill") == "1")
        except RequestError as e:
            return await _after_action(request, inv_id, Flash("error", e.message), e.status)
        return redirect(request, f"/invocations/{result['id']}?restarted_from={inv_id}")

    async def replay(request: Request) -> Response:
        inv_id = request.path_params["id"]
        try:
            check_id(inv_id)
            d.refuse("replay")
            result = await d.source.replay(inv_id)
        except RequestError as e:
            return await _after_action(request, inv_id, Flash("error", e.message), e.status)
        outcome = result.get("outcome")
        checked = result.get("entries_checked", 0)
        if outcome == "match":
            steps = f"entries 1–{checked}" if checked > 1 else f"entry {checked}"
            flash = Flash(
                "ok",
                f"Replay matches: today's code makes {steps} of the journal as recorded "
                "(entry 0 is the input)."
                if checked
                else "Replay matches: the journal holds no step past its input.",
            )
        elif outcome == "divergence":
            where = f" ({result['location']})" if result.get("location") else ""
            flash = Flash(
                "error",
                f"Replay diverges at entry {result.get('index')}: the journal has "
                f"{result.get('recorded')}, the code asks for {result.get('requested')}{where}.",
            )
        else:
            flash = Flash("error", f"Replay {outcome}: {result.get('message') or ''}")
        return await _after_action(request, inv_id, flash, 200)

    return [
        Route("/invocations/{id}", show),
        Route("/invocations/{id}/state", state_at),
        Route("/invocations/{id}/restart", restart, methods=["POST"]),
        Route("/invocations/{id}/replay", replay, methods=["POST"]),
        Route("/invocations/{id}/{action}", act, methods=["POST"]),
    ]
