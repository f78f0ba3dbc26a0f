"""H1: file save -> first request served by the new code; `durable dev` start -> first request.

The runtime runs with hot reload on an app file in the workload's folder. Each edit
rewrites the file with a new version string; the time is from the write until a call
returns that version. Start: from spawning `durable dev` until the first call returns.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from .harness import Outcome, Runtime, Settings, latency_metrics, percentile, workspace

APP = """
from durable import Service, Context

VERSION = "{version}"
svc = Service("Hot")

@svc.handler()
async def version(ctx: Context) -> str:
    return VERSION
"""


class _ReloadingRuntime(Runtime):
    def __init__(self, workdir: Path, app: Path) -> None:
        super().__init__(workdir, name="h1")
        self.app = app

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("dev") + 1] = str(self.app)
        cmd.remove("--no-reload")
        return cmd


async def _until_version(client: httpx.AsyncClient, url: str, want: str, timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            r = await client.post(url + "/Hot/version", timeout=5)
            if r.status_code == 200 and r.json() == want:
                return time.perf_counter()
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.005)
    raise TimeoutError(f"version {want} not served after {timeout} s")


async def run(settings: Settings) -> Outcome:
    edits = settings.n(20, 5)
    out = Outcome()
    async with workspace(settings, "H1") as workdir:
        app = workdir / "app.py"
        app.write_text(APP.format(version="v0"))
        rt = _ReloadingRuntime(workdir, app)
        t0 = time.perf_counter()
        await rt.start()
        async with httpx.AsyncClient() as client:
            t_first = await _until_version(client, rt.url, "v0", 30)
            out.metrics["start_to_first_ms"] = (t_first - t0) * 1000
            lat = []
            try:
                for i in range(1, edits + 1):
                    await asyncio.sleep(0.3)  # let the watcher settle between edits
                    t = time.perf_counter()
                    app.write_text(APP.format(version=f"v{i}"))
                    done = await _until_version(client, rt.url, f"v{i}", 30)
                    lat.append(done - t)
            finally:
                rt.stop()
        out.metrics.update(latency_metrics("reload_", lat))
        out.metrics["reload_p95_ms"] = percentile(lat, 95) * 1000
        out.metrics["ok"] = len(lat)
        out.metrics["n"] = edits
    return out
