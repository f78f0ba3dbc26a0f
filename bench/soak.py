"""python -m bench soak [--minutes N] [--kills N] [--seed S]: a mixed load with kill -9s.

A runtime serves ``bench/soak_app.py`` on one store while a few closed-loop users run
logical operations, each until it is acknowledged (every request of an operation
carries the same ``idempotency-key``, so a retry after a lost answer cannot run it
twice):

- ``steps``: ``SoakSteps/steps`` (3 ``ctx.run`` steps with 5 ms sleeps between);
- ``add``: ``SoakCounter/{key}/add(1)`` over many keys;
- ``sleepy``: a one-way send of ``SoakFlow/sleepy`` (a 10-400 ms durable sleep), then
  an attach for its result;
- ``awaiting``: a send of ``SoakFlow/awaiting``; the awakeable id it publishes is
  resolved over HTTP, then an attach;
- ``chain``: ``SoakFlow/chain``, a call to SoakSteps and one to a counter's ``add``.

Meanwhile ``--kills`` kill -9s, spread at random over 10%-85% of the run: two thirds of
the runtime (a new one starts at once on the same store and ports), one third of the
worker process (the runtime starts another). After the load, a final restart, then the
checks: every acknowledged output is right; each key's count equals the adds
acknowledged for it; no step body ran again after its run was journaled (a body or
"passed" line of the handler shows the step committed earlier in the fsynced step file);
journal indexes contiguous for every invocation (admin SQL API); no operation left
unfinished. Recovery: kill -9 -> first ``SoakFlow/ping`` answered (polled every 5 ms), and
each runtime's own spawn -> first call served. Exit code 1 when anything was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .harness import (
    BENCH_DIR,
    TRANSPORT_ERRORS,
    Runtime,
    admin_sql,
    body,
    bytecode_env,
    free_port,
    make_client,
    percentile,
    self_cpu,
)
from .soak_app import expected_steps

SOAK_APP = BENCH_DIR / "soak_app.py"
KINDS = ("steps", "add", "sleepy", "awaiting", "chain")
WEIGHTS = (3, 3, 2, 1, 2)
DRAIN_S = 120.0  # after the load: time for the operations in flight to finish
PROBE = "/SoakFlow/ping"


class Unfinished(Exception):
    """An operation not acknowledged before the final deadline."""


class WrongAnswer(Exception):
    """An answer no retry can fix (a 4xx, a failed invocation)."""


@dataclass
class Recovery:
    kind: str  # "runtime" or "worker" (what was killed), "final" (a clean restart)
    kill_to_served_s: float  # nan for "final"
    start_to_served_s: float  # the new runtime's spawn -> first call (nan for a worker)
    logged_ready_s: float  # the runtime's own "ready in" (nan for a worker)
    wal_kib: float = float("nan")  # DuckDB's WAL and the operation log the start replays
    oplog_kib: float = float("nan")


@dataclass
class Tally:
    acked: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    retries: int = 0
    adds: Counter[str] = field(default_factory=Counter)  # key -> adds acknowledged
    add_results: dict[str, list[int]] = field(default_factory=dict)


class Soak:
    def __init__(self, args: argparse.Namespace, wd: Path) -> None:
        self.args = args
        self.wd = wd
        self.store = wd / "store.duckdb"
        self.step_file = wd / "steps.txt"
        self.awake_file = wd / "awake.txt"
        self.env = {
            **bytecode_env(),
            "SOAK_STEP_FILE": str(self.step_file),
            "SOAK_AWAKE_FILE": str(self.awake_file),
        }
        self.ports = (free_port(), free_port())
        self.generation = 0
        self.rt = self._runtime()
        self.tally = Tally()
        self.recoveries: list[Recovery] = []
        self.notes: list[str] = []
        self.next_op = 0
        self.awakeables: dict[int, str] = {}
        self._awake_read = 0
        self.stop_new = 0.0  # time.perf_counter() after which no operation starts
        self.hard_deadline = float("inf")
        self.client: Any = None

    def _runtime(self) -> Runtime:
        self.generation += 1
        return Runtime(
            self.wd,
            store=self.store,
            env=self.env,
            name=f"runtime-{self.generation}",
            app=SOAK_APP,
            ports=self.ports,
        )

    # ------------------------------------------------------------------ requests
    async def _request(
        self, method: str, path: str, value: Any = None, idem: str | None = None
    ) -> Any:
        """Retry until an answer that is final: 2xx (and 409 for a resolve), or a 4xx."""
        headers = {"idempotency-key": idem} if idem else None
        last = ""
        while time.perf_counter() < self.hard_deadline:
            try:
                if method == "GET":
                    r = await self.client.get(path, timeout=30)
                else:
                    r = await self.client.post(path, body(value), headers=headers, timeout=30)
            except TRANSPORT_ERRORS as e:
                last = str(e)[:120]
            else:
                if r.status_code < 300 or (r.status_code == 409 and "already" in r.text):
                    return r
                if r.status_code in (404, 470) or r.status_code >= 500:
                    # 404: an awakeable not yet known after a restart; 470: not done yet
                    last = f"{r.status_code} {r.text[:120]}"
                else:
                    raise WrongAnswer(f"{method} {path} -> {r.status_code} {r.text[:200]}")
            self.tally.retries += 1
            await asyncio.sleep(0.05)
        raise Unfinished(f"{method} {path}: not acknowledged by the deadline (last: {last})")

    async def _attach(self, inv_id: str) -> Any:
        r = await self._request("GET", f"/restate/invocation/{inv_id}/attach")
        return r.json()

    async def _awakeable_of(self, op: int) -> str:
        while time.perf_counter() < self.hard_deadline:
            if op in self.awakeables:
                return self.awakeables[op]
            self._read_awake_file()
            await asyncio.sleep(0.02)
        raise Unfinished(f"awaiting op {op}: its awakeable id was never published")

    def _read_awake_file(self) -> None:
        try:
            with open(self.awake_file, "rb") as f:
                f.seek(self._awake_read)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        self._awake_read += end
        for line in data[:end].decode().splitlines():
            op, aw_id = line.split()
            self.awakeables[int(op)] = aw_id

    # ------------------------------------------------------------------ operations
    async def _operation(self, kind: str, rng: random.Random) -> None:
        self.next_op += 1
        op = self.next_op
        idem = f"soak-{op}"
        n = rng.randint(1, 1000)
        key = f"k{rng.randrange(self.args.keys)}"
        if kind == "steps":
            got = (await self._request("POST", "/SoakSteps/steps", {"op": op, "n": n}, idem)).json()
            want: Any = expected_steps(n)
        elif kind == "add":
            got = (await self._request("POST", f"/SoakCounter/{key}/add", 1, idem)).json()
            self.tally.adds[key] += 1
            self.tally.add_results.setdefault(key, []).append(got)
            want = got if isinstance(got, int) and got >= 1 else "a count >= 1"
        elif kind == "sleepy":
            req = {"op": op, "ms": rng.randint(10, 400)}
            r = await self._request("POST", "/SoakFlow/sleepy/send", req, idem)
            got, want = await self._attach(r.json()["invocationId"]), op * 2
        elif kind == "awaiting":
            r = await self._request("POST", "/SoakFlow/awaiting/send", {"op": op}, idem)
            inv_id = r.json()["invocationId"]
            aw_id = await self._awakeable_of(op)
            await self._request("POST", f"/restate/awakeables/{aw_id}/resolve", op * 3)
            got, want = await self._attach(inv_id), op * 3 + 1
        else:  # chain
            req = {"op": op, "n": n, "key": key}
            got = (await self._request("POST", "/SoakFlow/chain", req, idem)).json()
            self.tally.adds[key] += 1
            want = expected_steps(n)
        self.tally.acked[kind] += 1
        if got != want:
            self.tally.wrong.append(f"{kind} op {op}: got {got!r}, want {want!r}")

    async def _user(self, seed: int) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < self.stop_new:
            kind = rng.choices(KINDS, WEIGHTS)[0]
            try:
                await self._operation(kind, rng)
            except Unfinished as e:
                self.tally.unfinished.append(f"{kind}: {e}")
            except WrongAnswer as e:
                self.tally.wrong.append(f"{kind}: {e}")

    # ------------------------------------------------------------------ kills
    def _replay_sizes(self) -> tuple[float, float]:
        sizes = []
        for suffix in (".wal", ".oplog"):
            try:
                sizes.append(os.path.getsize(str(self.store) + suffix) / 1024)
            except OSError:
                sizes.append(0.0)
        return sizes[0], sizes[1]

    async def _start(self, since: float | None = None) -> Recovery:
        """Spawn the current runtime; wait for its first call served."""
        wal, oplog = self._replay_sizes()
        spawned = self.rt.spawn()
        served = await self.rt.first_call(PROBE, timeout=120, since=spawned)
        kill_to = (spawned - since + served) if since is not None else float("nan")
        return Recovery("runtime", kill_to, served, self.rt.logged_ready_s(), wal, oplog)

    async def _kill_runtime(self) -> None:
        old = self.rt
        old.pids()  # remember its worker
        t_kill = time.perf_counter()
        assert old.proc is not None
        old.proc.send_signal(signal.SIGKILL)
        old.proc.wait()
        self.rt = self._runtime()
        self.recoveries.append(await self._start(since=t_kill))
        left = await asyncio.to_thread(old._reap_leftovers, 1.0)
        old._close_log()
        if left:
            self.notes.append(f"a worker outlived its runtime's kill -9 (pids {left})")

    async def _kill_worker(self) -> None:
        workers = [p for p in self.rt.pids() if p != self.rt.pid]
        if not workers:
            self.notes.append("a worker kill found no worker process (skipped)")
            return
        t_kill = time.perf_counter()
        for p in workers:
            os.kill(p, signal.SIGKILL)
        served = await self.rt.first_call(PROBE, timeout=120, since=t_kill)
        self.recoveries.append(Recovery("worker", served, float("nan"), float("nan")))

    async def _killer(self, plan: list[tuple[float, str]]) -> None:
        for at, what in plan:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            if what == "runtime":
                await self._kill_runtime()
            else:
                await self._kill_worker()

    # ------------------------------------------------------------------ run and check
    async def run(self) -> bool:
        args = self.args
        rng = random.Random(args.seed)
        self.recoveries.append(await self._start())
        self.recoveries[-1].kind = "first"
        self.client = make_client(self.rt.url, args.users * 2 + 4)
        duration = args.minutes * 60
        t0 = time.perf_counter()
        self.cpu0 = self_cpu()
        self.stop_new = t0 + duration
        kinds = ["runtime" if i % 3 != 2 else "worker" for i in range(args.kills)]
        rng.shuffle(kinds)
        times = sorted(rng.uniform(0.10, 0.85) * duration for _ in kinds)
        plan = [(t0 + at, what) for at, what in zip(times, kinds, strict=True)]
        try:
            killer = asyncio.create_task(self._killer(plan))
            users = [
                asyncio.create_task(self._user(args.seed * 1000 + u)) for u in range(args.users)
            ]
            await killer
            await asyncio.sleep(max(0.0, self.stop_new - time.perf_counter()))
            self.hard_deadline = time.perf_counter() + DRAIN_S
            await asyncio.gather(*users)
            load_s = time.perf_counter() - t0
            self.gen_cpu_s = self_cpu() - self.cpu0
            # the final restart: a clean stop, a new runtime on the store, then the checks
            self.rt.stop()
            self.rt = self._runtime()
            final = await self._start()
            final.kind = "final"
            self.recoveries.append(final)
            return await self._check(load_s)
        finally:
            await self.client.aclose()
            self.rt.stop()

    async def _check(self, load_s: float) -> bool:
        t = self.tally
        self.hard_deadline = time.perf_counter() + 60
        off = []
        for key, want in sorted(t.adds.items()):
            got = (await self._request("POST", f"/SoakCounter/{key}/get")).json()
            if got != want:
                off.append(f"{key}: count {got}, adds acknowledged {want}")
        for key, results in t.add_results.items():
            if len(set(results)) != len(results):
                off.append(f"{key}: two adds returned the same count ({sorted(results)[:10]}...)")
        gaps = await admin_sql(
            self.rt.admin_url,
            "SELECT invocation_id, count(*), min(idx), max(idx) FROM journal GROUP BY ALL "
            "HAVING min(idx) <> 0 OR max(idx) <> count(*) - 1",
        )
        journaled = (
            await admin_sql(self.rt.admin_url, "SELECT count(DISTINCT invocation_id) FROM journal")
        )[0][0]
        active = await admin_sql(
            self.rt.admin_url,
            "SELECT service, handler, status, count(*) FROM invocations WHERE status NOT IN "
            "('completed', 'failed', 'killed', 'cancelled') GROUP BY ALL",
        )
        reruns, inflight = _step_reruns(self.step_file)
        lost = bool(t.wrong or off or gaps or reruns or t.unfinished or active)
        self._print(load_s, off, gaps, journaled, active, reruns, inflight, lost)
        return not lost

    def _print(self, load_s, off, gaps, journaled, active, reruns, inflight, lost) -> None:
        a, t = self.args, self.tally
        kills = Counter(r.kind for r in self.recoveries)
        acked = sum(t.acked.values())
        p = print
        p(
            f"soak: {load_s / 60:.1f} min of load, seed {a.seed}, {a.users} users, {a.keys} keys; "
            f"kill -9: {kills['runtime']} of the runtime, {kills['worker']} of the worker "
            f"({a.kills} planned)"
        )
        p(
            f"operations acknowledged: {acked:,} ("
            + ", ".join(f"{k} {t.acked[k]:,}" for k in KINDS)
            + f"); {acked / load_s:.0f}/s; requests retried: {t.retries:,}; "
            f"load generator CPU {self.gen_cpu_s:.1f} s ({self.gen_cpu_s / load_s * 100:.0f}% core)"
        )
        p(f"outputs:   {acked:,} checked, {len(t.wrong)} wrong")
        total = sum(t.adds.values())
        p(f"counters:  {len(t.adds)} keys, {len(off)} off ({total:,} adds acknowledged)")
        p(
            f"step re-runs after their journaled run: {reruns} "
            f"(bodies re-run while in flight, allowed: {inflight})"
        )
        p(f"journal:   {journaled:,} invocations, {len(gaps)} with gaps in their indexes")
        p(f"unfinished operations: {len(t.unfinished)}; invocations still active: {len(active)}")
        for kind in ("runtime", "worker"):
            xs = [r.kill_to_served_s for r in self.recoveries if r.kind == kind]
            if xs:
                p(
                    f"recovery after a {kind} kill -9 -> first call served: "
                    f"p50 {percentile(xs, 50):.2f} s, max {max(xs):.2f} s (n={len(xs)})"
                )
        starts = [r for r in self.recoveries if r.kind != "worker"]
        xs = [r.start_to_served_s for r in starts]
        own = [r.logged_ready_s for r in starts if r.logged_ready_s == r.logged_ready_s]
        p(
            f"runtime spawn -> first call served: p50 {percentile(xs, 50):.2f} s, "
            f'max {max(xs):.2f} s (n={len(xs)}); its own "ready in" p50 '
            f"{percentile(own, 50):.2f} s, max {max(own, default=float('nan')):.2f} s"
        )
        kills = [r for r in self.recoveries if r.kind == "runtime"]
        if kills:
            p(
                "  what those starts replayed: DuckDB WAL "
                + ", ".join(f"{r.wal_kib:,.0f}" for r in kills)
                + " KiB; operation log "
                + ", ".join(f"{r.oplog_kib:,.0f}" for r in kills)
                + " KiB; own ready "
                + ", ".join(f"{r.logged_ready_s:.2f}" for r in kills)
                + " s"
            )
        for line in (
            t.wrong[:5] + off[:5] + [str(g) for g in gaps[:5]] + t.unfinished[:5] + self.notes
        ):
            p(f"  - {line}")
        for row in active[:5]:
            p(f"  - still active: {row}")
        p("LOST: something acknowledged was lost or wrong" if lost else "nothing lost")


def _step_reruns(path: Path) -> tuple[int, int]:
    """(bodies run again after their step was committed, bodies run again in flight).

    The file is in time order (O_APPEND). A step is committed once the handler got past
    it ("op,step,passed") or the body of a later step of the same op ran."""
    committed: dict[int, int] = {}
    seen: set[tuple[int, int]] = set()
    after, inflight = 0, 0
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return 0, 0
    for line in lines:
        parts = line.split(",")
        if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        op, step = int(parts[0]), int(parts[1])
        if len(parts) == 3:
            committed[op] = max(committed.get(op, -1), step)
            continue
        if (op, step) in seen:
            if step <= committed.get(op, -1):
                after += 1
            else:
                inflight += 1
        seen.add((op, step))
        committed[op] = max(committed.get(op, -1), step - 1)
    return after, inflight


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0, help="minutes of load (default 5)")
    p.add_argument("--kills", type=int, default=10, help="kill -9s over the run (default 10)")
    p.add_argument("--seed", type=int, default=1, help="seeds the load and the kills")
    p.add_argument("--users", type=int, default=16, help="closed-loop users (default 16)")
    p.add_argument("--keys", type=int, default=200, help="counter keys (default 200)")
    p.add_argument("--tmp", default=None, help="where the store and logs go")
    p.add_argument("--keep", action="store_true", help="keep the folder (store, logs, files)")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    wd = Path(tempfile.mkdtemp(prefix="durable-soak-", dir=args.tmp))
    ok = False
    try:
        ok = asyncio.run(Soak(args, wd).run())
    finally:
        if args.keep or not ok:
            print(f"folder kept: {wd}", file=sys.stderr)
        else:
            shutil.rmtree(wd, ignore_errors=True)
    return 0 if ok else 1
