"""A Restate app (``import restate``, ``restate.app([...])``, hypercorn under
``__main__``) runs unchanged under ``durable dev``, in a subfolder laid out as Restate's
examples are; ``--no-restate-alias`` gives the real SDK back."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

TYPES = """
from dataclasses import dataclass
import msgspec
from pydantic import BaseModel

class Order(BaseModel):
    id: str
    amount: int

@dataclass
class Receipt:
    order_id: str
    total: int

class Audit(msgspec.Struct):
    who: str
    seen: list[str]
"""

APP = """
from datetime import timedelta

import restate
from restate import Context, ObjectContext, RunOptions
from restate.exceptions import TerminalError
from restate.vm import SuspendedException  # imported for except clauses, as apps do

from shop.types import Audit, Order, Receipt

orders = restate.Service("Orders")
audits = restate.VirtualObject("Audits")


async def charge(order: Order) -> Receipt:
    return Receipt(order_id=order.id, total=order.amount * 2)


def audit_of(who: str) -> Audit:
    return Audit(who=who, seen=[who])


@orders.handler()
async def place(ctx: Context, order: Order) -> Receipt:
    receipt = await ctx.run_typed("charge", charge, RunOptions(max_attempts=3), order=order)
    audit = await ctx.run("audit", audit_of, args=(order.id,))
    await ctx.object_call(record, key=order.id, arg=audit)
    if receipt.total > 1000:
        raise TerminalError("too expensive", status_code=402)
    return receipt


@audits.handler()
async def record(ctx: ObjectContext, audit: Audit) -> int:
    seen = await ctx.get("seen", type_hint=list[str]) or []
    seen += audit.seen
    ctx.set("seen", seen)
    return len(seen)


app = restate.app(services=[orders, audits])

if __name__ == "__main__":
    import asyncio

    import hypercorn.asyncio

    asyncio.run(hypercorn.asyncio.serve(app, hypercorn.Config()))
"""


def layout(root: Path) -> None:
    (root / "shop").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "types.py").write_text(textwrap.dedent(TYPES))
    (root / "shop" / "app.py").write_text(textwrap.dedent(APP))


@pytest.mark.parametrize("mode", [[], ["--inline"]], ids=["worker", "inline"])
def test_a_restate_app_runs_unchanged(tmp_path: Path, dev_server, mode: list[str]) -> None:
    layout(tmp_path)
    dev = dev_server("shop/app.py:app", extra=mode)  # as Restate's `hypercorn shop/app.py:app`
    with dev.client() as c:
        r = c.post("/Orders/place", json={"id": "o1", "amount": 21})
        assert r.status_code == 200, r.text
        assert r.json() == {"order_id": "o1", "total": 42}
        r = c.post("/Orders/place", json={"id": "o2", "amount": 600})
        # (the status a TerminalError's code gives is the ingress's business: issue 15 part B)
        assert r.status_code >= 400 and r.json()["message"] == "too expensive"
        assert c.post("/Audits/o1/record", json={"who": "x", "seen": ["y"]}).json() == 2
    log = dev.log()
    assert log.count("serving it through durable") == 1, log
    assert "SuspendedException" not in log


def test_no_restate_alias_loads_the_real_sdk(tmp_path: Path, dev_server) -> None:
    layout(tmp_path)
    dev = dev_server("shop/app.py:app", extra=["--no-restate-alias"])
    with dev.client() as c:
        r = c.post("/Orders/place", json={"id": "o1", "amount": 21})
    # the real SDK loads (it has no restate.vm.SuspendedException since 1.3)
    assert r.status_code == 404
    assert "site-packages/restate/vm.py" in r.json()["message"]
    assert "serving it through durable" not in dev.log()


def test_no_restate_alias_says_why_restate_services_are_not_served(
    tmp_path: Path, dev_server
) -> None:
    layout(tmp_path)
    app = tmp_path / "shop" / "app.py"
    app.write_text(app.read_text().replace("from restate.vm import SuspendedException", ""))
    dev = dev_server("shop/app.py:app", extra=["--no-restate-alias"])
    with dev.client() as c:
        r = c.post("/Orders/place", json={"id": "o1", "amount": 21})
    assert r.status_code == 404
    assert "the real restate-sdk was loaded" in r.json()["message"]
    assert "drop --no-restate-alias" in r.json()["message"]
