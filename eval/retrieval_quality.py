"""Retrieval quality over a BEIR-format dataset (nDCG, recall, MRR, P@k): one search pass, many fusion variants.

BM25 and dense candidates are fetched once per query to a fixed depth; every variant (bm25 alone, dense alone,
RRF, convex fusion at each α) is then computed from those lists, so a sweep of α costs milliseconds, not a new
search per value, and all variants see exactly the same candidates. (Speed is measured by ``ragline bench``;
this module is about the quality of the rankings.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median

from tqdm import tqdm

from eval.metrics import evaluate_retrieval, ndcg_at_k
from retrieval.fusion import ConvexFusion, ReciprocalRankFusion
from retrieval.index import Index
from retrieval.types import Hit

Variant = Callable[[Mapping[str, list[Hit]]], list[Hit]]
"""A ranking computed from one query's ``{"bm25": [...], "dense": [...]}`` lists."""

PIPELINES = ("bm25", "dense", "hybrid", "hybrid+rerank", "rerank-modes", "all")


@dataclass
class Candidates:
    """Per query: the ranked BM25 and dense hits, and how long each search took (ms)."""

    lists: dict[str, dict[str, list[Hit]]] = field(default_factory=dict)
    ms: dict[str, list[float]] = field(default_factory=lambda: {"bm25": [], "dense": []})


def gather(
    index: Index, collection: str, queries: Mapping[str, str], depth: int = 100, progress: bool = True
) -> Candidates:
    """Fetch the BM25 and dense lists of every query once, to ``depth``, timing each search."""
    candidates = Candidates()
    for qid, text in tqdm(queries.items(), desc="search", unit="query", disable=not progress):
        bm25, dense, bm25_ms, dense_ms = _timed_searches(index, collection, text, depth)
        candidates.ms["bm25"].append(bm25_ms)
        candidates.ms["dense"].append(dense_ms)
        candidates.lists[qid] = {"bm25": bm25, "dense": dense}
    return candidates


def _timed_searches(index: Index, collection: str, text: str, depth: int) -> tuple[list[Hit], list[Hit], float, float]:
    """The BM25 and dense lists of one query and each search's milliseconds; the variants fuse them later.

    Not a hybrid search: the two searchers run one after the other, each timed alone, because this report gives
    each searcher's own latency (``retrieval.hybrid`` runs them side by side, so their times overlap there).
    """
    started = time.perf_counter()
    bm25 = index.search_bm25(collection, text, depth)
    middle = time.perf_counter()
    dense = index.search_dense(collection, text, depth)
    return bm25, dense, (middle - started) * 1000, (time.perf_counter() - middle) * 1000


def doc_ranking(hits: Sequence[Hit]) -> list[str]:
    """Chunk hits → document ids in rank order (a document ranks at its best chunk)."""
    return [hit.chunk.doc_id for hit in hits]


def standard_variants(rrf_k: int = 60, alphas: Sequence[float] = ()) -> dict[str, Variant]:
    """bm25 alone, dense alone, RRF, and convex fusion at each of ``alphas``, keyed by the names reports use."""
    variants: dict[str, Variant] = {
        "bm25": lambda lists: lists["bm25"],
        "dense": lambda lists: lists["dense"],
        f"rrf(k={rrf_k})": ReciprocalRankFusion(rrf_k).fuse,
    }
    for alpha in alphas:
        variants[f"convex(α={alpha:.2f})"] = ConvexFusion(alpha).fuse
    return variants


def evaluate_variants(
    candidates: Candidates,
    qrels: Mapping[str, Mapping[str, int]],
    variants: Mapping[str, Variant],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, dict[str, float]]:
    """Metrics at each of ``ks`` per variant, over the queries that have both candidates and judgments."""
    results: dict[str, dict[str, float]] = {}
    for name, variant in variants.items():
        run = {qid: doc_ranking(variant(lists)) for qid, lists in candidates.lists.items()}
        results[name] = evaluate_retrieval(run, {q: qrels[q] for q in candidates.lists if q in qrels}, ks)
    return results


def per_query_ndcg(
    candidates: Candidates, qrels: Mapping[str, Mapping[str, int]], variants: Mapping[str, Variant], k: int = 10
) -> dict[str, dict[str, float]]:
    """nDCG@k of every judged query per variant, rounded to 6 places: what a paired comparison of two variants,
    or of two reports on the same queries (``eval.paired``), needs beyond the means."""
    judged = [q for q in candidates.lists if any(rel > 0 for rel in qrels.get(q, {}).values())]
    return {
        name: {q: round(ndcg_at_k(doc_ranking(variant(candidates.lists[q])), qrels[q], k), 6) for q in judged}
        for name, variant in variants.items()
    }


def pipeline_variants(
    pipeline: str, *, rrf_k: int, fusion: str, fusion_alpha: float, alphas: Sequence[float] = ()
) -> dict[str, Variant]:
    """The variants one ``--pipeline`` evaluates: ``all`` is every standard variant with the ``alphas`` sweep;
    ``bm25`` and ``dense`` are the single lists; ``hybrid``, ``hybrid+rerank`` and ``rerank-modes`` are the
    configured fusion (``fusion`` ``rrf`` with ``rrf_k``, else convex at ``fusion_alpha``), alone (reranking is added
    by the caller)."""
    if pipeline not in PIPELINES:
        raise ValueError(f"--pipeline must be one of {', '.join(PIPELINES)}")
    if pipeline == "all":
        return standard_variants(rrf_k, alphas)
    hybrid = f"rrf(k={rrf_k})" if fusion == "rrf" else f"convex(α={fusion_alpha:.2f})"
    chosen = {"bm25": "bm25", "dense": "dense"}.get(pipeline, hybrid)
    variants = standard_variants(rrf_k, [fusion_alpha])
    return {chosen: variants[chosen]}


def headline_columns(k: int) -> list[str]:
    """The columns of the printed table: the metrics at cut-off ``k``, and recall at depth 100."""
    return [f"ndcg@{k}", f"recall@{k}", "recall@100", f"mrr@{k}", f"p@{k}"]


def select_judged_queries(
    qrels: Mapping[str, Mapping[str, int]], texts: Mapping[str, str], limit: int | None, source: object
) -> dict[str, str]:
    """The texts of the judged queries, in qrels order, the first ``limit`` of them. A judged query without a text
    means the files are out of sync: ``ValueError`` naming ``source`` (the queries file) and the first such id."""
    missing = sorted(set(qrels) - set(texts))
    if missing:
        raise ValueError(f"{len(missing)} judged queries are not in {source} (first: {missing[0]})")
    selected = {qid: texts[qid] for qid in qrels}
    return dict(list(selected.items())[:limit]) if limit else selected


@dataclass(frozen=True)
class BestFusion:
    """The α sweep's outcome: the best convex weight, its score, RRF's score and which of the two wins."""

    alpha: float
    convex: float
    rrf: float
    metric: str

    @property
    def winner(self) -> str:
        return "convex" if self.convex > self.rrf else "rrf"

    def as_dict(self) -> dict[str, object]:
        return {
            "alpha": self.alpha,
            "convex": self.convex,
            "rrf": self.rrf,
            "winner": self.winner,
            "metric": self.metric,
        }


def best_fusion(results: Mapping[str, Mapping[str, float]], metric: str, rrf_k: int) -> BestFusion:
    """Compare the best convex variant by ``metric`` with RRF at ``rrf_k`` (both must be in ``results``)."""
    alpha, score = best_alpha(results, metric)
    return BestFusion(alpha, score, results[f"rrf(k={rrf_k})"][metric], metric)


def best_alpha(results: Mapping[str, Mapping[str, float]], metric: str = "ndcg@10") -> tuple[float, float]:
    """The α of the best convex variant by ``metric`` (ties go to the smaller α) and its score."""
    convex = {float(name.split("=")[1].rstrip(")")): scores[metric] for name, scores in results.items() if "α=" in name}
    if not convex:
        raise ValueError("no convex variants in the results")
    alpha = max(sorted(convex), key=lambda a: convex[a])
    return alpha, convex[alpha]


def latency_summary(candidates: Candidates) -> dict[str, float]:
    """p50 and p95 per search, in milliseconds."""
    summary: dict[str, float] = {}
    for name, values in candidates.ms.items():
        if values:
            ordered = sorted(values)
            summary[f"{name}_p50"] = round(median(ordered), 2)
            summary[f"{name}_p95"] = round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)
    return summary


def format_table(results: Mapping[str, Mapping[str, float]], columns: Sequence[str]) -> str:
    """One row per variant, one column per metric, four decimals."""
    width = max(len(name) for name in results) + 2
    lines = ["variant".ljust(width) + "".join(c.rjust(11) for c in columns)]
    for name, scores in results.items():
        lines.append(name.ljust(width) + "".join(f"{scores[c]:11.4f}" for c in columns))
    return "\n".join(lines)
