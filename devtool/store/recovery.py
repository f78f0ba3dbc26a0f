"""What a scan of the operation log means for a store: what is kept, what would be lost.

Used when the writer recovers (refuse to start on damage, cut a torn tail) and by
``durable store check`` / ``durable store repair``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .oplog import Damage, LogScan

__all__ = ["Findings", "findings", "damage_message"]


@dataclass(frozen=True)
class Findings:
    scan: LogScan
    applied: int  # the last group DuckDB holds
    to_apply: list[int]  # the intact groups DuckDB lacks, by seq
    losses: list[tuple[Damage, int, int]]  # damage that holds groups DuckDB lacks: first, last

    @property
    def lost_groups(self) -> int:
        return sum(last - first + 1 for _d, first, last in self.losses)


def findings(scan: LogScan, applied: int) -> Findings:
    losses = []
    for d in scan.damage:
        first, last = d.lost
        first = applied + 1 if first is None else max(first, applied + 1)
        if last >= first:
            losses.append((d, first, last))
    return Findings(scan, applied, [s for s, _ in scan.records if s > applied], losses)


def _groups(first: int, last: int) -> str:
    return f"group {first}" if first == last else f"groups {first}-{last}"


def damage_message(f: Findings, store_path: str) -> str:
    """Why the store is not opened, and what to do (one paragraph)."""
    parts = []
    for d, first, last in f.losses:
        parts.append(
            f"{d.size} bad bytes at offset {d.offset} hold {_groups(first, last)}, and "
            f"{f.scan.intact_after(d)} intact records (from group {d.next_seq}) follow them"
        )
    return (
        f"the operation log {f.scan.path} is damaged: {'; '.join(parts)}. Starting would "
        f"lose the records after the damage, so the store is not opened. See what would be "
        f"kept and lost with `durable store check --store {store_path}`; keep the intact "
        f"records and lose only the damaged ones with `durable store repair --store "
        f"{store_path}` (it saves a copy of the log first)."
    )
