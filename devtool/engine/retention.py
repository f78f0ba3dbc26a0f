"""Forgetting finished workflows once their main handler's ``workflow_retention`` passed."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..clock import to_dt
from ..store import queries
from ..store.ops import PurgeWorkflow

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["sweep_workflows", "retention_loop"]

log = logging.getLogger("durable.engine")


async def sweep_workflows(engine: Engine) -> list[tuple[str, str]]:
    """Forget finished workflows older than their main handler's ``workflow_retention``
    (output, journal, state, history, promises); returns the (workflow, id) pairs."""
    now = engine.clock.now()
    gone: list[tuple[str, str]] = []
    for info in list(engine.services.values()):
        main = next((h for h in info.handlers if h.kind == "workflow"), None)
        retention = getattr(main, "workflow_retention_s", None) if main else None
        if info.kind != "workflow" or main is None or not retention:
            continue
        before = to_dt(now - retention)
        keys = await engine.store.read(queries.finished_workflows, info.name, main.name, before)
        if keys:
            await engine.store.write([PurgeWorkflow(info.name, k) for k in keys])
            gone.extend((info.name, k) for k in keys)
    return gone


async def retention_loop(engine: Engine) -> None:
    while True:
        retentions = [
            r
            for info in engine.services.values()
            for h in info.handlers
            if h.kind == "workflow" and (r := getattr(h, "workflow_retention_s", None))
        ]
        period = min([60.0, *(max(r / 4, 0.2) for r in retentions)])
        await asyncio.sleep(period)
        if retentions:
            try:
                await engine.sweep_workflows()
            except Exception:  # a failed sweep is retried next period
                log.exception("workflow retention sweep failed")
