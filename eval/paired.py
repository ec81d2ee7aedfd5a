"""Paired comparison of two retrieval variants on the same queries: mean difference with a bootstrap interval.

Two variants scored on the same queries differ query by query; the mean of those differences and a 95% bootstrap
interval over queries say whether a gap of a point or two is an effect or a handful of queries. The variants may
come from one ``ragline eval retrieval`` report (two rows) or from two reports on the same queries (a collection
chunked two ways): both keep per-query nDCG under ``per_query``.

    python -m eval.paired REPORT_A VARIANT_A REPORT_B VARIANT_B     # B - A, in nDCG points
    python -m eval.paired --qa RESULTS_A CONFIG_A RESULTS_B CONFIG_B  # two `ragline eval qa` runs' results.jsonl,
                                                                     # answer containment (accuracy) per question
"""

from __future__ import annotations

import json
import random
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypedDict


class PairedMeanDifference(TypedDict):
    """``treated - baseline`` averaged over queries, in points (×100), with its 95% bootstrap interval."""

    queries: int
    baseline: float
    treated: float
    difference_points: float
    ci95_low_points: float
    ci95_high_points: float
    better: int
    worse: int


def paired_mean_difference(
    treated: Sequence[float], baseline: Sequence[float], resamples: int = 2000, seed: int = 13
) -> PairedMeanDifference:
    """Mean of ``treated - baseline`` over the same queries, in points, its 95% bootstrap interval, and how many
    queries moved each way."""
    if len(treated) != len(baseline) or not treated:
        raise ValueError(f"need two equally long, non-empty score lists, got {len(treated)} and {len(baseline)}")
    diffs = [t - b for t, b in zip(treated, baseline, strict=True)]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choice(diffs) for _ in diffs) for _ in range(resamples))
    return {
        "queries": len(diffs),
        "baseline": round(statistics.fmean(baseline), 4),
        "treated": round(statistics.fmean(treated), 4),
        "difference_points": round(100 * statistics.fmean(diffs), 2),
        "ci95_low_points": round(100 * means[int(0.025 * resamples)], 2),
        "ci95_high_points": round(100 * means[int(0.975 * resamples) - 1], 2),
        "better": sum(d > 0 for d in diffs),
        "worse": sum(d < 0 for d in diffs),
    }


def per_query(report: Mapping[str, object], variant: str, metric: str = "ndcg@10") -> dict[str, float]:
    """A report's per-query scores of ``variant``; ``KeyError`` naming what the report holds."""
    tables = report.get("per_query")
    if not isinstance(tables, dict) or metric not in tables:
        raise KeyError(f"the report has no per-query {metric} (reports written before per-query scores lack it)")
    if variant not in tables[metric]:
        raise KeyError(f"variant {variant!r} is not in the report; it holds {', '.join(tables[metric])}")
    return dict(tables[metric][variant])


def compare_reports(
    baseline: tuple[Path, str], treated: tuple[Path, str], metric: str = "ndcg@10"
) -> PairedMeanDifference:
    """``treated``'s variant against ``baseline``'s over the queries both reports scored (they must be the same)."""
    a = per_query(json.loads(baseline[0].read_text()), baseline[1], metric)
    b = per_query(json.loads(treated[0].read_text()), treated[1], metric)
    if set(a) != set(b):
        raise ValueError(f"the reports scored different queries ({len(a)} and {len(b)}, {len(set(a) ^ set(b))} apart)")
    queries = sorted(a)
    return paired_mean_difference([b[q] for q in queries], [a[q] for q in queries])


def qa_scores(results: Path, config: str, metric: str = "contains") -> dict[str, float]:
    """Per question, ``metric`` of ``config`` in a ``ragline eval qa`` run's ``results.jsonl``; questions that
    ended in an error are left out (they have no score), and ``ValueError`` names a config the file lacks."""
    scores: dict[str, float] = {}
    configs: set[str] = set()
    for line in results.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        configs.add(record["config"])
        if record["config"] == config and not record.get("error"):
            scores[record["id"]] = float(record["scores"][metric])
    if config not in configs:
        raise ValueError(f"{results} holds no config {config!r}; it holds {', '.join(sorted(configs))}")
    return scores


def compare_qa_runs(
    baseline: tuple[Path, str], treated: tuple[Path, str], metric: str = "contains"
) -> PairedMeanDifference:
    """``treated`` against ``baseline`` over the questions both answered without error."""
    a, b = qa_scores(*baseline, metric=metric), qa_scores(*treated, metric=metric)
    questions = sorted(set(a) & set(b))
    return paired_mean_difference([b[q] for q in questions], [a[q] for q in questions])


def main(argv: Sequence[str]) -> None:
    qa = bool(argv) and argv[0] == "--qa"
    args = list(argv[1:] if qa else argv)
    if len(args) != 4:
        raise SystemExit("usage: python -m eval.paired [--qa] A VARIANT_A B VARIANT_B")
    compare = compare_qa_runs if qa else compare_reports
    print(json.dumps(compare((Path(args[0]), args[1]), (Path(args[2]), args[3])), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
