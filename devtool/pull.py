"""Reading one invocation from a Restate cluster into a :class:`~durable.devtool.pulled.PulledCopy`.

Only reads (through :class:`~durable.devtool.cluster.restate.RestateAdmin`):
``GET /version``, ``GET /services`` and ``POST /query`` (Restate's SQL
introspection, read-only by nature) on the admin API; never an action, a ``PATCH`` or
anything through the ingress. What it reads: the invocation's row (``sys_invocation``),
its journal (``sys_journal``, mapped by :mod:`durable.devtool.cluster.journal`: entry 0
holds its input, and its headers), and the state of its key now (``state``).

Every way this can fail is a :class:`PullError` whose message says what to do.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from durable.messages import EntryKind, Failure

from .cluster.journal import UnknownEntry, map_journal, request_of
from .cluster.restate import RESTATE_ID, ClusterError, ClusterUnreachable, RestateAdmin, sql_text
from .errors import DevtoolError
from .pulled import PulledCopy, PulledEntry

__all__ = ["PullError", "read_invocation", "check_remote_id", "summary"]

_SERVICE_KINDS = {"service": "service", "virtual_object": "object", "workflow": "workflow"}


class PullError(DevtoolError):
    """Pulling failed; nothing was written. The message says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_remote_id(remote_id: str) -> None:
    """A Restate invocation id is ``inv_`` and letters and digits (PullError if not)."""
    if not RESTATE_ID.fullmatch(remote_id):
        raise PullError(
            f"{remote_id!r} is not a Restate invocation id: they look like "
            "inv_1eVo5PdoISlm6jjBIT15NnlJnbFO7Di1XC (see `restate invocations list`, or "
            "durable invocations ls --restate URL)"
        )


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def _failure(text: str | None) -> Failure | None:
    """Restate's ``completion_failure``: ``"[400] bad: oops"``."""
    if not text:
        return None
    m = re.fullmatch(r"\[(\d{3})\] ?(.*)", text, flags=re.S)
    return Failure(int(m.group(1)), m.group(2)) if m else Failure(500, text)


def _local_status(row: dict[str, Any], failure: Failure | None) -> str:
    """The copy's terminal status: the cluster's end, or ``killed`` for an invocation
    that had not ended there (it must never run here)."""
    if row.get("status") != "completed":
        return "killed"
    if row.get("completion_result") != "failure" or failure is None:
        return "completed"
    words = failure.message.lower()
    if failure.code == 409 and "kill" in words:
        return "killed"
    if failure.code == 409 and "cancel" in words:
        return "cancelled"
    return "failed"


def _remote_status(row: dict[str, Any]) -> str:
    status = str(row.get("status") or "unknown")
    if status == "completed" and row.get("completion_result") == "failure":
        return "completed with a failure"
    return status


async def _read(admin: RestateAdmin, remote_id: str) -> tuple[dict, list, dict | None, str]:
    """The invocation's row, journal rows, key state (None: a service) and handler kind."""
    try:
        await admin.version()  # is it a Restate admin API at all?
    except ClusterError as e:
        raise PullError(
            f"{admin.url} is not a Restate admin API (GET /version: {e.message}): give the "
            "admin URL, e.g. http://restate:9070"
        ) from None
    rows = await admin.query(f"SELECT * FROM sys_invocation WHERE id = {sql_text(remote_id)}")
    if not rows:
        raise PullError(
            f"the cluster at {admin.url} has no invocation {remote_id} (was it purged, "
            "or is it on another cluster?)"
        )
    inv = rows[0]
    journal = await admin.query(
        "SELECT index, entry_type, name, entry_json, appended_at FROM sys_journal "
        f"WHERE id = {sql_text(remote_id)} ORDER BY index"
    )
    if not journal:
        raise PullError(
            f"the journal of {remote_id} is no longer on the cluster (Restate keeps a "
            "finished invocation's journal for its journal_retention, "
            f"{inv.get('journal_retention') or '1 day by default'}): nothing to replay"
        )
    service = str(inv.get("target_service_name") or "")
    handler = str(inv.get("target_handler_name") or "")
    key = inv.get("target_service_key")
    service_kind = _SERVICE_KINDS.get(str(inv.get("target_service_ty")), "service")
    if service_kind == "service":
        return inv, journal, None, "service"
    kind = next(
        (
            str(h.get("ty") or "").lower()
            for s in await admin.services()
            if s.get("name") == service
            for h in s.get("handlers") or []
            if h.get("name") == handler
        ),
        "",
    )
    state: dict[str, str] = {}
    for s in await admin.query(
        f"SELECT key, value FROM state WHERE service_name = {sql_text(service)} "
        f"AND service_key = {sql_text(str(key))}"
    ):
        state[str(s["key"])] = bytes.fromhex(str(s["value"])).decode("utf-8", "replace")
    return inv, journal, state, kind or ("workflow" if service_kind == "workflow" else "exclusive")


def read_invocation(admin_url: str, remote_id: str) -> PulledCopy:
    """Everything ``durable pull`` copies of ``remote_id``, read from the cluster."""
    check_remote_id(remote_id)

    async def read() -> tuple[dict, list, dict | None, str]:
        admin = RestateAdmin(admin_url)
        try:
            return await _read(admin, remote_id)
        finally:
            await admin.close()

    try:
        inv, journal, state, handler_kind = asyncio.run(read())
    except (ClusterUnreachable, ClusterError) as e:
        raise PullError(str(e)) from None
    try:
        mapped = map_journal(journal, remote_id)
    except UnknownEntry as e:
        raise PullError(f"cannot read the journal of {remote_id}: {e}") from None
    service = str(inv.get("target_service_name") or "")
    handler = str(inv.get("target_handler_name") or "")
    key = inv.get("target_service_key")
    service_kind = _SERVICE_KINDS.get(str(inv.get("target_service_ty")), "service")
    _body, headers = request_of(journal)
    failure = _failure(inv.get("completion_failure"))
    last = mapped[-1].entry
    output = last.result if last.kind is EntryKind.OUTPUT and last.failure is None else None
    if last.kind is EntryKind.OUTPUT and last.failure is not None:
        failure = last.failure
    created = _time(inv.get("created_at")) or datetime.now(UTC).replace(tzinfo=None)
    modified = _time(inv.get("modified_at")) or created
    remote_status = _remote_status(inv)
    last_error = None
    if inv.get("status") != "completed":
        last_error = (
            f"a copy of an invocation that was {remote_status} on the cluster when pulled: "
            "it does not run here (replay it, or restart it from an entry)"
        )
        if inv.get("last_failure"):
            last_error += f"; its last failure there: {inv['last_failure']}"
    entries = tuple(PulledEntry(m.entry, m.created_at or created, m.completed_at) for m in mapped)
    return PulledCopy(
        cluster=admin_url.rstrip("/"),
        remote_id=remote_id,
        remote_status=remote_status,
        status=_local_status(inv, failure),
        service=service,
        handler=handler,
        key=str(key) if key is not None else None,
        service_kind=service_kind,
        handler_kind=handler_kind,
        headers=headers,
        # Restate gives ingress calls an idempotency key of its own: kept only if sent
        idempotency_key=next(
            (v for k, v in headers.items() if k.lower() == "idempotency-key"), None
        ),
        output=output,
        failure=failure,
        last_error=last_error,
        created_at=created,
        modified_at=modified,
        completed_at=_time(inv.get("completed_at")),
        entries=entries,
        state=state,
        pulled_at=datetime.now(UTC).replace(tzinfo=None),
    )


def summary(copy: PulledCopy) -> str:
    """One line about what was read (for the CLI)."""
    target = f"{copy.service}/{copy.handler}" + (f" key {copy.key!r}" if copy.key else "")
    state = f", {len(copy.state)} state entries of its key" if copy.state else ""
    return f"{target}, {copy.remote_status} there, {len(copy.entries)} entries{state}"
