"""kill -9 of the runtime mid-way: recorded steps are reused, never re-executed."""

from __future__ import annotations

import asyncio
import collections
import time

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

APP = """
import os, time
from durable import Service, Context

STEPS_FILE = os.environ["STEPS_FILE"]
svc = Service("Steps")

def step(tag: str, i: int) -> int:
    time.sleep(0.05)
    fd = os.open(STEPS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{tag},{i}\\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return i

@svc.handler()
async def ten(ctx: Context, tag: str) -> int:
    total = 0
    for i in range(10):
        total += await ctx.run(f"step{i}", step, tag, i)
    return total
"""


def _lines(path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        tag, i = line.split(",")
        out.append((tag, int(i)))
    return out


def test_kill_9_mid_run_then_all_complete_without_rerunning_recorded_steps(
    write_app, dev_server, tmp_path
):
    steps_file = tmp_path / "steps.txt"
    app = write_app(APP)
    env = {"STEPS_FILE": str(steps_file)}
    srv = dev_server(app, env=env)
    n = 100
    with srv.client() as c:
        ids = {}
        for k in range(n):
            r = c.post("/Steps/ten/send", json=f"t{k}", headers={"Idempotency-Key": f"t{k}"})
            assert r.status_code == 202
            ids[f"t{k}"] = r.json()["invocationId"]
    # let some progress happen, then kill -9 runtime and worker
    deadline = time.monotonic() + 60
    while len(_lines(steps_file)) < 150 and time.monotonic() < deadline:
        time.sleep(0.02)
    srv.kill()
    before = _lines(steps_file)
    assert 0 < len(before) < n * 10, "the kill should land mid-way"
    srv.start()

    async def attach_all() -> dict[str, httpx.Response]:
        async with httpx.AsyncClient(base_url=srv.url, timeout=120) as ac:
            rs = await asyncio.gather(
                *(ac.get(f"/restate/invocation/{i}/attach") for i in ids.values())
            )
            return dict(zip(ids, rs, strict=True))

    results = asyncio.run(attach_all())
    for tag, r in results.items():
        assert r.status_code == 200, (tag, r.text)
        assert r.json() == sum(range(10))
    after = _lines(steps_file)
    counts = collections.Counter(after)
    # every step ran at least once
    assert set(counts) == {(f"t{k}", i) for k in range(n) for i in range(10)}
    # only the step an invocation had in flight at the kill may have run twice
    last_before: dict[str, int] = {}
    for tag, i in before:
        last_before[tag] = max(last_before.get(tag, -1), i)
    dups = {key: c for key, c in counts.items() if c > 1}
    for (tag, i), c in dups.items():
        assert c == 2 and last_before.get(tag) == i, f"step {i} of {tag} ran {c} times"
    print(f"\nkill -9 after {len(before)} step bodies; re-executed in-flight bodies: {len(dups)}")
