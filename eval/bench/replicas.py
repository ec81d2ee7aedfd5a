"""Throughput of 1, 2, … API replicas over the same store, measured in one run so the rows compare.

Each row starts its replicas (``start(n)`` yields their base URLs), puts the same concurrent load on them round-robin
(``run_load``) and stops them. The row's figures: successful queries per second, their p50/p99 latency, and both
as ratios to the first row. The replicas are separate processes, so what they can gain over one is what a single
process leaves unused (the GIL, one event loop), bounded by the machine's cores and by the LLM they share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from eval.bench.load import LoadResult, percentile, run_load, status_class


@dataclass(frozen=True)
class ReplicaRow:
    replicas: int
    load: LoadResult

    @property
    def ok_latencies_ms(self) -> list[float]:
        return [v for status, values in self.load.latencies_ms.items() if status_class(status) == "2xx" for v in values]

    @property
    def ok_per_s(self) -> float:
        return len(self.ok_latencies_ms) / self.load.wall_s if self.load.wall_s else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "replicas": self.replicas,
            "ok_per_s": round(self.ok_per_s, 2),
            "p50_ms": percentile(self.ok_latencies_ms, 0.5),
            "p99_ms": percentile(self.ok_latencies_ms, 0.99),
            "load": self.load.summary(),
        }


@dataclass
class ReplicaComparison:
    clients: int
    seconds: float
    rows: list[ReplicaRow] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        rows = [row.summary() for row in self.rows]
        base = rows[0] if rows else None
        for row in rows:
            if base and base["ok_per_s"]:
                row["ok_per_s_ratio"] = round(row["ok_per_s"] / base["ok_per_s"], 2)
            if base and base["p50_ms"] and row["p50_ms"]:
                row["p50_ratio"] = round(row["p50_ms"] / base["p50_ms"], 2)
        return {"clients": self.clients, "seconds": self.seconds, "rows": rows}

    def lines(self) -> list[str]:
        first = self.rows[0].replicas
        out = [f"{self.clients} clients x {self.seconds:g} s per row; ratios against {first} replica(s)"]
        out.append(f"{'replicas':>8}  {'ok/s':>7}  {'ratio':>5}  {'p50 ms':>8}  {'p99 ms':>8}  statuses")
        for row in self.summary()["rows"]:
            statuses = ", ".join(f"{k} {v}" for k, v in sorted(row["load"]["by_status"].items()))
            out.append(
                f"{row['replicas']:>8}  {row['ok_per_s']:>7.2f}  {row.get('ok_per_s_ratio', 1.0):>5.2f}  "
                f"{row['p50_ms'] or 0:>8.1f}  {row['p99_ms'] or 0:>8.1f}  {statuses}"
            )
        return out


def compare_replicas(
    start: Callable[[int], AbstractContextManager[list[str]]],
    counts: Sequence[int],
    *,
    clients: int,
    seconds: float,
    client_timeout_s: float,
    collection: str,
    progress: Callable[[str], None] = lambda _: None,
) -> ReplicaComparison:
    """One load run per replica count, each against replicas started fresh by ``start``."""
    comparison = ReplicaComparison(clients, seconds)
    for count in counts:
        with start(count) as urls:
            progress(f"{count} replica(s) at {', '.join(urls)}: {clients} clients for {seconds:g} s …")
            load = run_load(urls, clients=clients, seconds=seconds, client_timeout_s=client_timeout_s,
                            collection=collection)  # fmt: skip
        comparison.rows.append(ReplicaRow(count, load))
    return comparison
