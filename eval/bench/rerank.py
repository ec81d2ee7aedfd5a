"""``ragline bench rerank``: what the rerank stage buys and costs, per model and engine, in one process.

Quality and speed are measured on the same candidates: each question's hybrid list is fetched once, then every
variant reorders its head. Quality is nDCG@10 against the question set's gold document ids (hybrid alone is the
baseline row); speed is the median time to rerank the top N, with speed-ups over the first engine (torch fp32 by
default) that hold on a busy machine where absolute milliseconds do not.

The measuring functions (``compare`` and ``rerank_latency`` today) are handed in by the caller as a
``RerankMeasures`` over the fetched candidates, so this module needs neither the settings nor the index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from retrieval.types import Hit

HYBRID = "hybrid"
SAMPLE_QA = Path(__file__).resolve().parents[1] / "datasets" / "sample_qa.jsonl"
"""The bundled questions about the sample corpus, with gold document ids."""


class Reranker(Protocol):
    """A cross-encoder as the bench uses it: rescore ``hits`` for ``query``, best first."""

    def rerank(self, query: str, hits: Sequence[Hit], weight: float = 1.0) -> list[Hit]: ...


@dataclass(frozen=True)
class RerankVariant:
    """One reranker model on one engine; ``name`` (``"<model> <engine>"``) is its row in the table and report."""

    model: str
    engine: str
    reranker: Reranker

    @property
    def name(self) -> str:
        return f"{self.model} {self.engine}"


class RerankMeasures(Protocol):
    """Quality and latency of rerankers over one fixed set of hybrid candidate lists with gold judgements."""

    def ndcg_at_10(self, rerankers: Mapping[str, Reranker], top_n: int, weight: float) -> Mapping[str, float]:
        """nDCG@10 of plain hybrid (key ``HYBRID``) and of each reranker reordering the top ``top_n``."""
        ...

    def latency(self, reranker: Reranker, top_n: int) -> Mapping[str, float]:
        """``median_ms``, ``p90_ms`` and ``queries`` for reranking the top ``top_n`` candidates."""
        ...


@dataclass(frozen=True)
class RerankBenchResult:
    """What ``ragline bench rerank`` measured; ``as_report`` is the results file's content."""

    collection: str
    dataset: str
    questions: int
    max_length: int
    weight: float
    sizes: list[int]
    ndcg_at_10: dict[str, float]
    latency_ms: dict[str, dict[int, Mapping[str, float]]]
    speedup_vs: str
    speedup: dict[str, dict[int, float]]

    @property
    def quality_top_n(self) -> int:
        """Quality is measured at the smallest top N."""
        return self.sizes[0]

    def as_report(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "dataset": self.dataset,
            "questions": self.questions,
            "max_length": self.max_length,
            "weight": self.weight,
            "quality_top_n": self.quality_top_n,
            "ndcg@10": self.ndcg_at_10,
            "latency_ms": self.latency_ms,
            "speedup_vs": self.speedup_vs,
            "speedup": self.speedup,
        }


def bench_rerank(
    variants: Sequence[RerankVariant],
    measures: RerankMeasures,
    sizes: Sequence[int],
    *,
    weight: float,
    collection: str,
    dataset: str,
    questions: int,
    max_length: int,
) -> RerankBenchResult:
    """nDCG@10 of hybrid vs hybrid+rerank (at the smallest of ``sizes``) and rerank latency at each size, per
    variant; speed-ups of each model's other engines over its first engine, measured in this process.

    ``variants`` lists each model's engines in the same order; ``collection``, ``dataset``, ``questions`` and
    ``max_length`` describe the run for the report."""
    if not variants or not sizes:
        raise ValueError("bench_rerank needs at least one variant and one top N")
    ordered = sorted(sizes)
    by_name = {variant.name: variant.reranker for variant in variants}
    quality = measures.ndcg_at_10(by_name, ordered[0], weight)
    latency = {name: {n: measures.latency(reranker, n) for n in ordered} for name, reranker in by_name.items()}
    baseline = variants[0].engine
    ratios = {
        variant.name: {
            n: round(latency[f"{variant.model} {baseline}"][n]["median_ms"] / latency[variant.name][n]["median_ms"], 2)
            for n in ordered
        }
        for variant in variants
        if variant.engine != baseline
    }
    return RerankBenchResult(
        collection=collection,
        dataset=dataset,
        questions=questions,
        max_length=max_length,
        weight=weight,
        sizes=ordered,
        ndcg_at_10={name: round(score, 4) for name, score in quality.items()},
        latency_ms=latency,
        speedup_vs=baseline,
        speedup=ratios,
    )
