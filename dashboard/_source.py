"""Where the pages get their data and send their actions: one interface, two sources.

:class:`Source` is every read and action a page uses, in the admin API's JSON shapes.
:class:`~._reads.EngineSource` serves it in-process from the runtime's engine and store
(the dashboard mounted in ``durable dev``); :class:`~._remote.ApiSource` serves it over
an admin API reached with httpx (``durable dashboard --url`` for a runtime elsewhere,
``--restate`` for a Restate cluster through :mod:`durable.devtool.cluster`).

A feature a source cannot give is named in :attr:`Source.unavailable` with the reason;
pages hide or disable its control and say why, and a POST that still arrives gets the
reason as a 501.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from durable.devtool.errors import RequestError
from durable.messages import Failure, ServiceInfo

__all__ = [
    "Source",
    "ServicesView",
    "Invoked",
    "SourceError",
    "SourceUnreachable",
    "NotAvailable",
    "FEATURES",
    "refuse",
]

#: the features a source may lack, for :attr:`Source.unavailable`
FEATURES = (
    "replay",
    "restart",
    "timetravel",
    "state_edit",
    "sql",
    "tree",
    "invoke",
    "bulk",
    "promises",
)


class SourceError(RequestError):
    """The source refused a read or an action; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class NotAvailable(SourceError):
    """A feature this source cannot give (501); the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 501)


class SourceUnreachable(Exception):
    """The admin API (runtime or cluster) did not answer; pages show a banner."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ServicesView:
    """The services found, why the app does not load (or None), whether code can run."""

    services: list[ServiceInfo]
    error: str | None = None
    worker: bool = True
    ingress_url: str | None = None


@dataclass(frozen=True)
class Invoked:
    """What invoking a handler from the Services page gave: the invocation, whether it
    existed already (idempotency key), and for a call its outcome (None: still running)."""

    inv_id: str
    existing: bool
    status: str | None = None
    output: Any = None
    failure: Failure | None = None
    done: bool = False


class Source(Protocol):
    """Every read and action of the dashboard (see the module docstring)."""

    #: feature (one of :data:`FEATURES`) -> why this source cannot give it
    unavailable: Mapping[str, str]

    def header(self) -> Mapping[str, Any]:
        """What the top bar shows about what the dashboard looks at (``cluster``: a
        Restate cluster's URL; ``app``, ``store``, ``ingress_url``: a runtime's)."""
        ...

    def app_error(self) -> dict[str, Any] | None:
        """Why the app does not load, or None (the every-page banner; no I/O)."""
        ...

    def outage(self) -> str | None:
        """Why the admin API does not answer, or None (no I/O: the last check's)."""
        ...

    def store_degraded(self) -> str | None: ...

    async def check(self) -> None:
        """Refresh what :meth:`app_error` and :meth:`outage` say (the banner's poll)."""
        ...

    # -- reads
    async def services(self) -> ServicesView: ...

    async def invocations(
        self,
        filters: Mapping[str, str],
        *,
        after: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]: ...

    async def count(self, filters: Mapping[str, str]) -> tuple[int, bool]: ...

    async def status_counts(self, filters: Mapping[str, str] | None) -> dict[str, int]: ...

    async def matching_ids(
        self, filters: Mapping[str, str], cap: int
    ) -> tuple[list[str], bool]: ...

    async def invocation(self, inv_id: str) -> dict[str, Any] | None: ...

    async def tree(self, inv_id: str, limit: int) -> dict[str, Any] | None: ...

    async def state_step(
        self, service: str, key: str, inv_id: str, entry: int
    ) -> dict[str, Any]: ...

    async def state(self, service: str, key: str) -> dict[str, Any]: ...

    async def state_keys(self, service: str) -> dict[str, Any]: ...

    async def pending(self) -> dict[str, Any]: ...

    async def tables(self) -> list[str]: ...

    async def sql(self, text: str, limit: int) -> dict[str, Any]: ...

    # -- actions
    async def act(self, action: str, inv_id: str) -> dict[str, Any]: ...

    async def restart(self, inv_id: str, entry: int, kill: bool) -> dict[str, Any]: ...

    async def replay(self, inv_id: str) -> dict[str, Any]: ...

    async def bulk(self, action: str, ids: list[str]) -> dict[str, Any]: ...

    async def resolve_awakeable(self, awk_id: str, value_json: str) -> dict[str, Any]: ...

    async def reject_awakeable(self, awk_id: str, message: str, code: int) -> dict[str, Any]: ...

    async def complete_promise(
        self,
        service: str,
        key: str,
        name: str,
        value_json: str | None = None,
        failure: Failure | None = None,
    ) -> dict[str, Any]: ...

    async def set_state(
        self, service: str, key: str, name: str, value_json: str | None
    ) -> dict[str, Any]: ...

    async def invoke(
        self,
        service: str,
        handler: str,
        key: str | None,
        body: bytes,
        idempotency_key: str | None,
        delay: float,
        send: bool,
        wait_s: float,
    ) -> Invoked: ...


def refuse(source: Source, feature: str) -> None:
    """Raise :class:`NotAvailable` if ``source`` cannot give ``feature``."""
    why = source.unavailable.get(feature)
    if why is not None:
        raise NotAvailable(why)
