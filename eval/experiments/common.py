"""What every context experiment shares: concurrency, rates and medians, paired differences with a bootstrap
interval, plain-text tables and the timestamped JSON report."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypedDict, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[str], None]
ANSWER_TOKENS = 48  # short answers: NQ-Open answers are a few words, and the metric reads containment


def no_progress(line: str) -> None:
    """The default progress sink: experiments report progress through a callable so that library code never prints."""


def run_concurrently(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``fn`` over ``items`` with ``workers`` requests in flight, so vLLM batches them; results in input order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def median_ms(values: Sequence[float]) -> float | None:
    """The median rounded to 0.1 (milliseconds, or any count), None for no values."""
    return round(statistics.median(values), 1) if values else None


def true_rate(flags: Sequence[bool]) -> float | None:
    """Share of true flags, rounded to 4 places, None for no flags: accuracy over outcomes, or an abstention share."""
    return round(sum(flags) / len(flags), 4) if flags else None


class PairedDifference(TypedDict):
    """Outcome difference ``treated - baseline`` over the same questions, in points, with its 95% bootstrap interval
    and the questions each side alone got right."""

    questions: int
    difference_points: float
    ci95_low_points: float
    ci95_high_points: float
    only_treated_right: int
    only_baseline_right: int


def paired_difference(
    treated: Sequence[bool], baseline: Sequence[bool], resamples: int = 2000, seed: int = 13
) -> PairedDifference:
    """Accuracy difference ``treated - baseline`` over the same questions, in points, with its spread.

    Why paired: with edge positioning the gold passage lands first whenever the relevance score ranks it first, so
    the two prompts differ only in the order of the distractors; the share of questions whose outcome flips, and a
    bootstrap interval over questions, say whether a gap of a few points is an effect or a handful of flips.
    """
    if len(treated) != len(baseline) or not treated:
        raise ValueError(f"need two equally long, non-empty outcome lists, got {len(treated)} and {len(baseline)}")
    diffs = [int(t) - int(b) for t, b in zip(treated, baseline, strict=True)]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choice(diffs) for _ in diffs) for _ in range(resamples))
    return {
        "questions": len(diffs),
        "difference_points": round(100 * statistics.fmean(diffs), 1),
        "ci95_low_points": round(100 * means[int(0.025 * resamples)], 1),
        "ci95_high_points": round(100 * means[int(0.975 * resamples) - 1], 1),
        "only_treated_right": sum(d > 0 for d in diffs),
        "only_baseline_right": sum(d < 0 for d in diffs),
    }


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Left-aligned columns (default: the keys of the first row), one line per row."""
    columns = list(rows[0]) if columns is None else columns
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def stage_entry(trace: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The trace entry of stage ``name`` (empty when the stage did not run)."""
    return next((s for s in trace["stages"] if s["stage"] == name), {})


def read_question_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL question file; each must hold a non-empty ``question``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad = [i + 1 for i, r in enumerate(rows) if not isinstance(r, dict) or not str(r.get("question", "")).strip()]
    if bad:
        raise ValueError(f"{path}: rows without a question on lines {bad[:5]}")
    return rows


class ReportFile:
    """``<reports_dir>/context-<name>-<timestamp>.json``, named at its first write and rewritten in place after,
    so that a long run keeps what it finished."""

    def __init__(self, reports_dir: Path, name: str) -> None:
        self.reports_dir, self.name = reports_dir, name
        self.path: Path | None = None

    def write(self, payload: Mapping[str, Any]) -> Path:
        """Writes ``payload``; returns the file's path."""
        if self.path is None:
            self.reports_dir.mkdir(parents=True, exist_ok=True)
            self.path = self.reports_dir / f"context-{self.name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        self.path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
        return self.path
