"""What every benchmark shares: percentiles of timings, ratios against a baseline measured in the same process,
a wall-and-CPU clock, and the dated results file under ``<data_dir>/reports/``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from statistics import median
from typing import Any


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p95 and count of ``values`` (milliseconds, rounded to microseconds)."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {"p50": round(median(ordered), 3), "p95": round(p95, 3), "n": len(ordered)}


def speedup(baseline: float, measured: float) -> float:
    """How many times faster ``measured`` is than ``baseline`` (a zero time counts as one nanosecond)."""
    return baseline / max(measured, 1e-9)


def time_callable(fn: Callable[[str], object], queries: Sequence[str]) -> dict[str, float]:
    """Percentiles of ``fn``'s milliseconds on each query in turn."""
    values = []
    for query in queries:
        started = time.perf_counter()
        fn(query)
        values.append((time.perf_counter() - started) * 1000)
    return percentiles(values)


class Clock:
    """Wall and process CPU seconds of one measured block: CPU time drifts far less with other processes' load."""

    wall: float
    cpu: float

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def report_path(reports_dir: Path, bench: str) -> Path:
    """``<reports_dir>/bench-<bench>-<YYYYmmdd-HHMMSS>.json``: one dated file per run, never overwritten by the next."""
    return reports_dir / f"bench-{bench}-{time.strftime('%Y%m%d-%H%M%S')}.json"


def write_report(reports_dir: Path, bench: str, report: Mapping[str, Any]) -> Path:
    """Write ``report`` as indented JSON to a new dated file and return its path."""
    out = report_path(reports_dir, bench)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return out
