"""HyDE: nDCG@10 and Recall@10 of BM25, dense and hybrid retrieval with and without a hypothetical passage as the
search query, and the latency it adds.

The hypothetical passages are written once per query (``workers`` in flight) and stored, so a second run writes
none; both variants then search the same index to the same depth and are scored by the same code as ``ragline eval
retrieval``. Latency: queries one at a time, each timed as plain search and as HyDE (generation plus search) in the
same process; on a shared host the ratio is the number to read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from eval.experiments.answer_cache import AnswerCache
from eval.experiments.common import Progress, format_table, median_ms, no_progress, run_concurrently
from eval.retrieval_quality import Candidates, evaluate_variants, standard_variants
from retrieval.hybrid import search_both
from retrieval.index import Index


@dataclass(frozen=True)
class QuerySet:
    """Judged queries on one collection: text and filter of each query, and its relevance judgements."""

    label: str
    collection: str
    queries: dict[str, tuple[str, dict[str, Any] | None]]
    qrels: dict[str, dict[str, int]]


@dataclass(frozen=True)
class HybridConfig:
    """The configured fusion (``rrf`` or ``convex``) and the per-searcher depths of a plain query."""

    fusion: str
    rrf_k: int
    fusion_alpha: float
    bm25_top_k: int
    dense_top_k: int

    @property
    def hybrid_name(self) -> str:
        """The variant name ``eval.retrieval_quality.standard_variants`` gives the configured fusion."""
        return f"rrf(k={self.rrf_k})" if self.fusion == "rrf" else f"convex(α={self.fusion_alpha:.2f})"


@dataclass(frozen=True)
class QueryWriter:
    """Writes the HyDE search query of a question (``write``: the ``hyde`` stage itself) and stores each under
    ``prompt`` (the stage's prompt template, ``{question}`` filled in) in ``stored``."""

    write: Callable[[str], str]
    prompt: str
    stored: AnswerCache

    def key(self, question: str) -> str:
        return self.prompt.format(question=question)


class HydeLatency(TypedDict):
    queries: int
    plain_ms_median: float | None
    hyde_ms_median: float | None
    generation_ms_median: float | None
    hyde_over_plain: float
    plain_ms: list[float]
    hyde_ms: list[float]


@dataclass(frozen=True)
class HydeExperiment:
    """Scores per query set and retrieval, with and without HyDE; the queries written; the latency if timed."""

    beir: Path
    split: str
    fusion: str
    generator: str
    depth: int
    results: list[dict[str, Any]]
    latency: HydeLatency | None
    per_set: dict[str, dict[str, Any]]

    def lines(self) -> list[str]:
        lines = [format_table(self.results)]
        if (latency := self.latency) is not None:
            lines.append(
                f"latency, {latency['queries']} queries one at a time: plain search {latency['plain_ms_median']} ms, "
                f"HyDE {latency['hyde_ms_median']} ms (generation {latency['generation_ms_median']} ms); "
                f"HyDE/plain {latency['hyde_over_plain']}×"
            )
        return lines

    def report(self) -> dict[str, Any]:
        return {
            "beir": str(self.beir),
            "split": self.split,
            "fusion": self.fusion,
            "generator": self.generator,
            "depth": self.depth,
            "results": self.results,
            "latency": self.latency or {},
            "generation_ms_concurrent_median": {
                k: median_ms(v["generation_ms_concurrent"]) for k, v in self.per_set.items()
            },
            "per_set": self.per_set,
        }


def write_queries(
    writer: QueryWriter, questions: dict[str, str], workers: int, on_progress: Progress = no_progress
) -> tuple[dict[str, str], list[float]]:
    """The HyDE search query of each question (stored ones read back), and the time of each new generation."""
    missing = [q for q, text in questions.items() if writer.stored.get(writer.key(text)) is None]
    on_progress(f"HyDE: {len(questions) - len(missing)} of {len(questions)} queries written by an earlier run")

    def write(qid: str) -> float:
        started = time.perf_counter()
        query = writer.write(questions[qid])
        elapsed = (time.perf_counter() - started) * 1000
        writer.stored.put(writer.key(questions[qid]), query)
        return elapsed

    spent = run_concurrently(write, missing, workers)
    return {q: writer.stored.get(writer.key(t)) or t for q, t in questions.items()}, spent


def retrieval_scores(
    index: Index,
    query_set: QuerySet,
    queries: Mapping[str, tuple[str, dict[str, Any] | None]],
    depth: int,
    hybrid: HybridConfig,
) -> dict[str, dict[str, float]]:
    """BM25, dense and the configured hybrid fusion, scored like ``ragline eval retrieval`` (filters applied)."""
    candidates = Candidates()
    for qid, (text, where) in queries.items():
        # BM25 beside dense, as the pipeline searches; each retrieval variant then fuses the two lists its own way.
        bm25, dense = search_both(
            index,
            query_set.collection,
            text,
            bm25_k=depth,
            dense_k=depth,
            where=where,
            prefetch_vectors=False,
            trace=[],
        )
        candidates.lists[qid] = {"bm25": bm25, "dense": dense}
    variants = standard_variants(hybrid.rrf_k, [hybrid.fusion_alpha])
    chosen = {
        "bm25": variants["bm25"],
        "dense": variants["dense"],
        f"hybrid {hybrid.hybrid_name}": variants[hybrid.hybrid_name],
    }
    return evaluate_variants(candidates, query_set.qrels, chosen, (10,))


def hyde_latency(
    index: Index, writer: QueryWriter, collection: str, questions: list[str], hybrid: HybridConfig
) -> HydeLatency:
    """Each question searched plainly, then written (not stored) and searched as HyDE, one at a time."""

    def search(text: str) -> None:
        search_both(index, collection, text, bm25_k=hybrid.bm25_top_k, dense_k=hybrid.dense_top_k, trace=[])

    plain, hyde, generation = [], [], []
    for question in questions:
        started = time.perf_counter()
        search(question)
        plain.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        query = writer.write(question)
        generated = time.perf_counter()
        search(query)
        hyde.append((time.perf_counter() - started) * 1000)
        generation.append((generated - started) * 1000)
    return {
        "queries": len(questions),
        "plain_ms_median": median_ms(plain),
        "hyde_ms_median": median_ms(hyde),
        "generation_ms_median": median_ms(generation),
        "hyde_over_plain": round((median_ms(hyde) or 0) / (median_ms(plain) or 1), 1),
        "plain_ms": [round(v, 1) for v in plain],
        "hyde_ms": [round(v, 1) for v in hyde],
    }


def run_hyde_experiment(
    index: Index,
    writer: QueryWriter,
    query_sets: list[QuerySet],
    *,
    beir: Path,
    split: str,
    generator: str,
    hybrid: HybridConfig,
    depth: int,
    workers: int,
    latency_queries: int,
    on_progress: Progress = no_progress,
) -> HydeExperiment:
    """Every query set scored plain and with HyDE; then the first ``latency_queries`` of the first set timed."""
    rows: list[dict[str, Any]] = []
    per_set: dict[str, dict[str, Any]] = {}
    for query_set in query_sets:
        texts = {q: t for q, (t, _) in query_set.queries.items()}
        hypothetical, generation_ms = write_queries(writer, texts, workers, on_progress)
        plain = retrieval_scores(index, query_set, query_set.queries, depth, hybrid)
        with_hyde = {q: (hypothetical[q], w) for q, (_, w) in query_set.queries.items()}
        hyde = retrieval_scores(index, query_set, with_hyde, depth, hybrid)
        for variant in plain:
            rows.append(
                {
                    "set": query_set.label,
                    "queries": len(query_set.queries),
                    "retrieval": variant,
                    "ndcg@10": round(plain[variant]["ndcg@10"], 4),
                    "ndcg@10_hyde": round(hyde[variant]["ndcg@10"], 4),
                    "recall@10": round(plain[variant]["recall@10"], 4),
                    "recall@10_hyde": round(hyde[variant]["recall@10"], 4),
                }
            )
        per_set[query_set.label] = {"hypothetical": hypothetical, "generation_ms_concurrent": generation_ms}
    latency = None
    if latency_queries:
        first = query_sets[0]
        timed = [text for text, _ in list(first.queries.values())[:latency_queries]]
        latency = hyde_latency(index, writer, first.collection, timed, hybrid)
    return HydeExperiment(beir, split, hybrid.fusion, generator, depth, rows, latency, per_set)
