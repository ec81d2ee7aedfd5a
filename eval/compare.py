"""Compare two QA runs metric by metric, and decide whether the second one regressed (the CI gate).

Only quality metrics gate: latency measured on shared CI machines is too noisy to fail a build on, so it is shown
but never counted. A metric regresses when it moves in its bad direction by more than the tolerance (absolute,
on the 0..1 scale every quality metric uses); refusing answerable questions is the one where lower is better.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.report import LOWER_IS_BETTER, flat_metrics

__all__ = ["Delta", "RunComparison", "compare_reports", "compare_runs", "format_deltas", "load_report", "regressions"]

NOT_GATED = {"abstained"}
"""Overall abstention mixes a right refusal (unanswerable) with a wrong one (answerable): shown, never gated; its
two halves gate instead."""


@dataclass(frozen=True)
class Delta:
    """One metric of one config in both runs (``None`` on the side that lacks it)."""

    config: str
    metric: str
    before: float | None
    after: float | None

    @property
    def change(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    def regressed(self, tolerance: float) -> bool:
        change = self.change
        if change is None or self.metric in NOT_GATED:
            return False
        worse = change if self.metric in LOWER_IS_BETTER else -change
        return worse > tolerance + 1e-12


def load_report(run: str | Path, reports_dir: Path) -> dict[str, Any]:
    """A run id (folder under ``reports_dir``), a run folder or a ``report.json`` path → the report."""
    path = Path(run)
    candidates = [path, path / "report.json", reports_dir / str(run) / "report.json"]
    for candidate in candidates:
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"{candidate} is not valid JSON: {exc.msg}") from None
    raise FileNotFoundError(f"no report for {run!r}: looked for {', '.join(map(str, candidates[1:]))}")


def compare_reports(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Delta]:
    """Deltas for every (config, metric) present in either run; a side that lacks it has ``None``."""
    deltas: list[Delta] = []
    configs = [c for c in before["summary"] if c in after["summary"]]
    for config in configs:
        a, b = flat_metrics(before["summary"][config]), flat_metrics(after["summary"][config])
        for metric in list(dict.fromkeys([*a, *b])):
            deltas.append(Delta(config, metric, a.get(metric), b.get(metric)))
    return deltas


def regressions(deltas: list[Delta], tolerance: float) -> list[Delta]:
    """The deltas that moved in their bad direction by more than ``tolerance``."""
    return [d for d in deltas if d.regressed(tolerance)]


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def format_deltas(deltas: list[Delta], tolerance: float) -> str:
    """A table of every delta, regressions marked."""
    lines = [f"{'config':16} {'metric':22} {'before':>8} {'after':>8} {'delta':>8}"]
    for d in deltas:
        change = d.change
        mark = "  REGRESSION" if d.regressed(tolerance) else ""
        delta = "–" if change is None else f"{change:+.3f}"
        lines.append(f"{d.config:16} {d.metric:22} {_fmt(d.before):>8} {_fmt(d.after):>8} {delta:>8}{mark}")
    return "\n".join(lines)


@dataclass(frozen=True)
class RunComparison:
    """Two runs compared: the deltas of the configs both ran, the configs only one ran, and the regressions."""

    deltas: list[Delta]
    only_in_one: list[str]
    regressions: list[Delta]


def compare_runs(run_a: str | Path, run_b: str | Path, reports_dir: Path, tolerance: float) -> RunComparison:
    """Load both runs (see ``load_report``) and compare ``run_b`` against the baseline ``run_a``."""
    before, after = load_report(run_a, reports_dir), load_report(run_b, reports_dir)
    deltas = compare_reports(before, after)
    only = sorted(set(before["summary"]) ^ set(after["summary"]))
    return RunComparison(deltas, only, regressions(deltas, tolerance))
