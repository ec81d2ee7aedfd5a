"""Paired bootstrap interval of a mean difference: is a gain over a baseline more than the luck of the queries?

Two systems scored on the same queries differ query by query; resampling the queries (with replacement) and
recomputing the mean difference each time shows how much the gain would move on another draw of queries of the same
kind. Pairing (the same resampled queries for both systems) removes the queries' own difficulty from the spread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["PairedInterval", "paired_bootstrap"]


@dataclass(frozen=True)
class PairedInterval:
    """Mean of ``system - baseline`` over the queries, its percentile interval, and the share of resamples where the
    system did not beat the baseline (a one-sided bootstrap p-value)."""

    mean: float
    low: float
    high: float
    level: float
    resamples: int
    queries: int
    p_not_better: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "mean": round(self.mean, 5),
            "low": round(self.low, 5),
            "high": round(self.high, 5),
            "level": self.level,
            "resamples": self.resamples,
            "queries": self.queries,
            "p_not_better": round(self.p_not_better, 4),
        }

    def points(self) -> str:
        """``+2.1 [+0.4, +3.9]`` in points (hundredths), the way the docs quote nDCG gains."""
        return f"{100 * self.mean:+.1f} [{100 * self.low:+.1f}, {100 * self.high:+.1f}]"


def paired_bootstrap(
    system: Mapping[str, float],
    baseline: Mapping[str, float],
    *,
    resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedInterval:
    """The ``level`` percentile interval of the mean per-query difference ``system - baseline``.

    Both mappings must score exactly the same queries: a query only one system answered would make the pairing a
    lie, so it is refused rather than dropped."""
    if set(system) != set(baseline):
        raise ValueError(f"system and baseline must score the same queries ({len(set(system) ^ set(baseline))} differ)")
    if not system:
        raise ValueError("no queries to resample")
    if not 0 < level < 1 or resamples < 1:
        raise ValueError(f"level must be in (0, 1) and resamples positive, got {level}, {resamples}")
    qids = sorted(system)
    diff = np.asarray([system[q] - baseline[q] for q in qids], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    chunk = 1000  # resample in blocks: one (resamples x queries) index matrix would be large for big query sets
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        means[start:stop] = diff[rng.integers(0, len(diff), size=(stop - start, len(diff)))].mean(axis=1)
    tail = (1 - level) / 2
    return PairedInterval(
        mean=float(diff.mean()),
        low=float(np.quantile(means, tail)),
        high=float(np.quantile(means, 1 - tail)),
        level=level,
        resamples=resamples,
        queries=len(diff),
        p_not_better=float(np.mean(means <= 0)),
    )
