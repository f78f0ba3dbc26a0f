"""The one table: per workload its figures (medians over the runs), its target, the
ratio against the baseline measured in the same run, and the load generator's CPU."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .harness import Outcome, median

Metrics = dict[str, float]


def aggregate(outcomes: list[Outcome]) -> Metrics:
    """Per metric, the median over the runs that produced it."""
    keys: list[str] = []
    for o in outcomes:
        keys += [k for k in o.metrics if k not in keys]
    agg: Metrics = {}
    for k in keys:
        vals = [o.metrics[k] for o in outcomes if k in o.metrics and not _nan(o.metrics[k])]
        if vals:
            agg[k] = median(vals)
    return agg


def _nan(v: float | None) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def ms(v: float | None) -> str:
    if _nan(v):
        return "?"
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


def num(v: float | None, unit: str = "", digits: int = 0) -> str:
    if _nan(v):
        return "?"
    return f"{v:,.{digits}f}{unit}"


def ratio(a: float | None, b: float | None) -> float | None:
    if _nan(a) or _nan(b) or not b:
        return None
    return a / b


def x(v: float | None) -> str:
    return "?" if v is None else f"{v:.2f}x"


@dataclass
class Row:
    figures: str
    target: str
    vs_baseline: str
    verdict: bool | None  # None: not measured


def _ok_count(m: Metrics) -> str:
    if "calls" in m and "ok" in m and m["ok"] < m["calls"]:
        return f"\n[red]{m['ok']:.0f}/{m['calls']:.0f} ok[/red]"
    return ""


def row_baseline(m: Metrics, ctx: dict[str, Metrics]) -> Row:
    return Row(
        f"commit p50 {ms(m.get('commit_p50_ms'))} (p99 {ms(m.get('commit_p99_ms'))})\n"
        f"32-row appender commits {num(m.get('rows_per_s'), ' rows/s')} "
        f"(batch p50 {ms(m.get('batch_p50_ms'))})\n"
        f"fdatasync p50 {ms(m.get('fdatasync_p50_ms'))}",
        "(reference)",
        "1.00x",
        None,
    )


def row_w1a(m: Metrics, ctx: dict[str, Metrics]) -> Row:
    r = ratio(m.get("per_step_ms"), ctx["baseline"].get("commit_p50_ms"))
    return Row(
        f"p50 {ms(m.get('p50_ms'))}, p99 {ms(m.get('p99_ms'))}\n"
        f"per step {ms(m.get('per_step_ms'))}" + _ok_count(m),
        "per step <= 1.3x commit p50",
        f"per step {x(r)} commit",
        None if r is None else r <= 1.3,
    )


def row_w1b(m: Metrics, ctx: dict[str, Metrics]) -> Row:
    r = ratio(m.get("steps_per_s"), ctx["baseline"].get("rows_per_s"))
    rss = m.get("peak_rss_mib")
    verdict = None if r is None or _nan(rss) else (r >= 0.5 and rss < 150)
    return Row(
        f"{num(m.get('inv_per_s'), ' inv/s')}, {num(m.get('steps_per_s'), ' steps/s')}\n"
        f"p50 {ms(m.get('p50_ms'))}, p99 {ms(m.get('p99_ms'))}\n"
        f"peak RSS {num(rss, ' MiB')}" + _ok_count(m),
        "steps/s >= 0.5x rows/s\nRSS < 150 MiB",
        f"steps/s {x(r)} rows/s",
        verdict,
    )


def row_w2(m: Metrics, ctx: dict[str, Metrics]) -> Row:
    w1b = ctx.get("W1b", {}).get("inv_per_s")
    r_w1b = ratio(m.get("ops_per_s"), w1b)
    r_base = ratio(m.get("ops_per_s"), ctx["baseline"].get("rows_per_s"))
    exact = m.get("exact_keys") == m.get("keys") and "keys" in m
    verdict = None if r_w1b is None else (r_w1b >= 0.5 and exact)
    return Row(
        f"{num(m.get('ops_per_s'), ' ops/s')}\n"
        f"p50 {ms(m.get('p50_ms'))}, p99 {ms(m.get('p99_ms'))}\n"
        f"exact {num(m.get('exact_keys'))}/{num(m.get('keys'))} keys" + _ok_count(m),
        "ops/s >= 0.5x W1b inv/s\nevery count exact",
        f"ops/s {x(r_base)} rows/s\n{x(r_w1b)} W1b inv/s"
        if w1b
        else f"ops/s {x(r_base)} rows/s\n(W1b not run)",
        verdict,
    )


def row_w3(m: Metrics, ctx: dict[str, Metrics]) -> Row:
    # the verdict takes the stricter of the two counts of an invocation's own life: the
    # runtime's created_at -> completed_at (it exists from its commit, before the 202)
    p50 = m.get("lifetime_over_p50_ms")
    r = ratio(p50, ctx["baseline"].get("commit_p50_ms"))
    return Row(
        f"all done {num(m.get('all_done_s'), ' s', 2)} "
        f"(sends {num(m.get('send_phase_s'), ' s', 2)})\n"
        f"overhead p50 {ms(p50)}, p99 {ms(m.get('lifetime_over_p99_ms'))} "
        "(runtime: created -> completed)\n"
        f"client, 202 -> result: p50 {ms(m.get('overhead_acc_p50_ms'))}, "
        f"p99 {ms(m.get('overhead_acc_p99_ms'))}\n"
        f"client, send issued -> result: p50 {ms(m.get('overhead_p50_ms'))}, "
        f"p99 {ms(m.get('overhead_p99_ms'))}" + _ok_count(m),
        "overhead p50 < 10 ms",
        f"overhead {x(r)} commit",
        None if _nan(p50) else p50 < 10,
    )


def row_w4(m: Metrics, ctx: dict[str, Metrics]) -> Row:
    p50 = m.get("p50_ms")
    r = ratio(p50, ctx["baseline"].get("commit_p50_ms"))
    extra = ""
    if m.get("resolve_404_retries"):
        extra = f"\n{m['resolve_404_retries']:.0f} resolve retries after 404"
    return Row(
        f"resolve -> done p50 {ms(p50)}, p99 {ms(m.get('p99_ms'))}\n"
        f"(resolve call p50 {ms(m.get('resolve_p50_ms'))})" + extra + _ok_count(m),
        "p50 < 5 ms",
        f"p50 {x(r)} commit",
        None if _nan(p50) else p50 < 5,
    )


def row_w5(m: Metrics, ctx: dict[str, Metrics]) -> Row:
    delta = m.get("delta_mib")
    calls = m.get("calls")
    proj = m.get("delta_10k_mib")
    figures = (
        f"idle {num(m.get('idle_mib'), ' MiB', 1)} -> {num(m.get('after_mib'), ' MiB', 1)}"
        f" (peak {num(m.get('peak_mib'), ' MiB', 1)})\n"
        f"delta {num(delta, ' MiB', 1)} for {num(calls)} = {num(m.get('bytes_per_inv'), ' B/inv')}"
    )
    if calls and calls != 10_000:
        figures += f"\nprojected to 10,000: {num(proj, ' MiB', 1)}"
    figures += f"\nsends {num(m.get('sends_per_s'), '/s')}" + _ok_count(m)
    check = proj if calls and calls != 10_000 else delta
    return Row(figures, "< +20 MiB for 10,000", "-", None if _nan(check) else check < 20)


def row_r1(m: Metrics, ctx: dict[str, Metrics]) -> Row:
    lost = m.get("lost_s")
    r = ratio(m.get("restart_to_done_s"), m.get("nocrash_s"))
    rerun = m.get("committed_rerun")
    verdict = None if _nan(lost) or _nan(rerun) else (lost <= 2 and rerun == 0)
    nocrash_fail = ""
    if "calls" in m and m.get("nocrash_ok", m["calls"]) < m["calls"]:
        nocrash_fail = f"\n[red]no crash: {m['nocrash_ok']:.0f}/{m['calls']:.0f} ok[/red]"
    return Row(
        f"no crash: all done {num(m.get('nocrash_s'), ' s', 2)}\n"
        f"crash: restart -> all done {num(m.get('restart_to_done_s'), ' s', 2)} "
        f"(ready {num(m.get('restart_ready_s'), ' s', 2)})\n"
        f"time lost to the crash {num(lost, ' s', 2)}\n"
        f"bodies re-run {num(m.get('reexecuted'))} "
        f"(committed ones {num(rerun)})" + _ok_count(m) + nocrash_fail,
        "lost <= 2 s\nno committed step re-run",
        f"restart->done {x(r)} no-crash",
        verdict,
    )


def row_h1(m: Metrics, ctx: dict[str, Metrics]) -> Row:
    p50, p95, start = m.get("reload_p50_ms"), m.get("reload_p95_ms"), m.get("start_to_first_ms")
    ok = None if _nan(p50) or _nan(start) else (p50 < 1000 and start < 1500)
    return Row(
        f"save -> new code serving p50 {ms(p50)}, p95 {ms(p95)}\n"
        f"start -> first request {ms(start)}" + _ok_count(m),
        "save p50 < 1 s; start < 1.5 s",
        "-",
        ok,
    )


def row_d1(m: Metrics, ctx: dict[str, Metrics]) -> Row:
    pages = [m.get(f"{k}_p99_ms") for k in ("first", "deep", "poll", "service", "status")]
    worst = None if any(_nan(p) for p in pages) else max(pages)  # type: ignore[type-var]
    return Row(
        f"{num(m.get('rows'))} invocations (built in {num(m.get('build_s'), ' s', 1)}, "
        f"{num(m.get('store_mib'), ' MiB')})\n"
        f"server p50/p99: first page {ms(m.get('first_p50_ms'))}/{ms(m.get('first_p99_ms'))}, "
        f"deep page {ms(m.get('deep_p50_ms'))}/{ms(m.get('deep_p99_ms'))}\n"
        f"live poll {ms(m.get('poll_p50_ms'))}/{ms(m.get('poll_p99_ms'))}, "
        f"by service {ms(m.get('service_p50_ms'))}/{ms(m.get('service_p99_ms'))}, "
        f"by status {ms(m.get('status_p50_ms'))}/{ms(m.get('status_p99_ms'))}\n"
        f"counts (lazy) {ms(m.get('count_p50_ms'))}/{ms(m.get('count_p99_ms'))}; "
        f"client first page p50 {ms(m.get('first_client_p50_ms'))}",
        "list pages p99 < 200 ms",
        "-",
        None if worst is None else worst < 200,
    )


def row_rc1(m: Metrics, ctx: dict[str, Metrics]) -> Row:
    loaded, empty = m.get("loaded_first_call_s"), m.get("empty_first_call_s")
    return Row(
        f"store of {num(m.get('history'))} done ({num(m.get('journal_rows'))} journal rows, "
        f"{num(m.get('store_mib'), ' MiB')}) + {num(m.get('active'))} active, after kill -9:\n"
        f"  spawn -> first call {num(loaded, ' s', 2)} "
        f"(runtime's own ready {num(m.get('loaded_logged_ready_s'), ' s', 2)}; "
        f"CPU rt+worker {num(m.get('loaded_cpu_s'), ' s', 2)})\n"
        f"empty store: spawn -> first call {num(empty, ' s', 2)} "
        f"(own ready {num(m.get('empty_logged_ready_s'), ' s', 2)}; "
        f"CPU {num(m.get('empty_cpu_s'), ' s', 2)})",
        "loaded: spawn -> first call <= 1 s",
        f"loaded {x(ratio(loaded, empty))} empty",
        None if _nan(loaded) else loaded <= 1.0,
    )


ROWS: dict[str, Callable[[Metrics, dict[str, Metrics]], Row]] = {
    "baseline": row_baseline,
    "W1a": row_w1a,
    "W1b": row_w1b,
    "W2": row_w2,
    "W3": row_w3,
    "W4": row_w4,
    "W5": row_w5,
    "R1": row_r1,
    "H1": row_h1,
    "D1": row_d1,
    "RC1": row_rc1,
}


def cpu_cell(m: Metrics) -> str:
    gen = m.get("gen_cpu_s")
    wall = m.get("gen_wall_s")
    rt = m.get("rt_cpu_s")
    if _nan(gen):
        return "-"
    text = f"gen {gen:.2f} s"
    if not _nan(wall) and wall:
        text += f" ({gen / wall * 100:.0f}% core)"
    if not _nan(rt):
        text += f"\nrt+worker {rt:.2f} s"
    return text


def render(
    results: dict[str, list[Outcome]], *, runs: int, quick: bool, header: str
) -> tuple[object, list[str]]:
    """The rich Table and the error lines to print below it."""
    from rich.table import Table

    ctx = {name: aggregate(outs) for name, outs in results.items()}
    ctx.setdefault("baseline", {})
    table = Table(title=header, show_lines=True)
    table.add_column("workload", style="bold")
    table.add_column("figures (median)")
    table.add_column("target")
    table.add_column("vs baseline")
    table.add_column("ok")
    table.add_column("load gen CPU")
    table.add_column("runs", justify="right")
    errors: list[str] = []
    for name, outs in results.items():
        m = ctx[name]
        good = [o for o in outs if o.metrics]
        for i, o in enumerate(outs, 1):
            errors += [f"{name} run {i}: {e}" for e in o.errors]
            errors += [f"{name} run {i} (note): {n}" for n in o.notes]
        if not good:
            first = outs[0].errors[0].splitlines()[0] if outs and outs[0].errors else "no data"
            table.add_row(
                name, f"[red]failed: {first[:160]}[/red]", "", "", "[red]?[/red]", "", "0"
            )
            continue
        row = ROWS[name](m, ctx)
        verdict = {True: "[green]PASS[/green]", False: "[red]FAIL[/red]", None: "-"}[row.verdict]
        table.add_row(
            name,
            row.figures,
            row.target,
            row.vs_baseline,
            verdict,
            cpu_cell(m),
            f"{len(good)}/{len(outs)}",
        )
    return table, errors
