"""python -m bench [--only W1a,W1b,...] [--runs N] [--quick] [--json FILE] [--keep]

python -m bench soak [--minutes N] [--kills N] [--seed S]: see bench/soak.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from . import baseline, d1, h1, r1, rc1, w1, w2, w3, w4, w5
from .harness import Outcome, Settings, describe

WORKLOADS: dict[str, Callable[[Settings], Awaitable[Outcome]]] = {
    "baseline": baseline.run,
    "W1a": w1.run_w1a,
    "W1b": w1.run_w1b,
    "W2": w2.run,
    "W3": w3.run,
    "W4": w4.run,
    "W5": w5.run,
    "R1": r1.run,
    "H1": h1.run,
    "D1": d1.run,
    "RC1": rc1.run,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--only",
        default="",
        help="comma-separated workloads (baseline always runs): " + ",".join(WORKLOADS),
    )
    p.add_argument(
        "--runs", type=int, default=None, help="runs per workload (default 3; 1 with --quick)"
    )
    p.add_argument("--quick", action="store_true", help="1 run, smaller counts")
    p.add_argument("--json", metavar="FILE", help="also write every run's figures as JSON")
    p.add_argument("--keep", action="store_true", help="keep temp folders (stores, runtime logs)")
    p.add_argument(
        "--tmp", metavar="DIR", default=None, help="where temp folders go (the disk measured)"
    )
    p.add_argument(
        "--client",
        choices=["light", "httpx"],
        default="light",
        help="load generator's HTTP client (default: the light asyncio one, see httpclient.py)",
    )
    args = p.parse_args(argv)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        names = {n.lower(): n for n in WORKLOADS}
        unknown = [w for w in wanted if w.lower() not in names]
        if unknown:
            p.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
        args.selected = ["baseline"] + [names[w.lower()] for w in wanted if w.lower() != "baseline"]
    else:
        args.selected = list(WORKLOADS)
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


async def main_async(args: argparse.Namespace) -> dict[str, list[Outcome]]:
    from rich.console import Console

    err = Console(stderr=True)
    settings = Settings(quick=args.quick, tmp_root=args.tmp, keep=args.keep, client=args.client)
    results: dict[str, list[Outcome]] = {name: [] for name in args.selected}
    # rounds: every workload once per round, so slow drifts of the machine spread evenly
    for rnd in range(1, args.runs + 1):
        for name in args.selected:
            t0 = time.perf_counter()
            with err.status(f"{name}  run {rnd}/{args.runs}"):
                try:
                    out = await WORKLOADS[name](settings)
                except Exception as e:  # reported in the table
                    out = Outcome(errors=[describe(e)])
            status = "[red]failed[/red]" if not out.metrics else "done"
            err.print(f"{name} run {rnd}/{args.runs}: {status} in {time.perf_counter() - t0:.1f} s")
            if not out.metrics and out.errors:
                err.print(out.errors[0].splitlines()[0], markup=False, highlight=False)
            results[name].append(out)
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["soak"]:  # the soak run by hand: its own options and report
        from .soak import main as soak_main

        return soak_main(argv[1:])
    args = parse_args(argv)
    from rich.console import Console

    from .report import aggregate, render

    results = asyncio.run(main_async(args))
    header = (
        f"durable benchmarks - {'quick, ' if args.quick else ''}{args.runs} run(s), medians; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, client {args.client}"
    )
    table, errors = render(results, runs=args.runs, quick=args.quick, header=header)
    out = Console()
    if not out.is_terminal:
        out = Console(width=150)
    out.print(table)
    for line in errors:
        out.print(f"- {line}", markup=False, highlight=False)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "runs": args.runs,
                    "quick": args.quick,
                    "medians": {n: aggregate(o) for n, o in results.items()},
                    "raw": {n: [asdict(o) for o in outs] for n, outs in results.items()},
                },
                f,
                indent=2,
                default=str,
            )
    failed = any(not any(o.metrics for o in outs) for outs in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
