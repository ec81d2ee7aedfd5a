"""Retrieval evaluation over a BEIR-format dataset: one search pass, many fusion variants.

BM25 and dense candidates are fetched once per query to a fixed depth; every variant (bm25 alone, dense alone,
RRF, convex fusion at each α) is then computed from those lists, so a sweep of α costs milliseconds, not a new
search per value, and all variants see exactly the same candidates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median

from tqdm import tqdm

from eval.metrics import evaluate_retrieval
from retrieval.fusion import ConvexFusion, ReciprocalRankFusion
from retrieval.index import Index
from retrieval.types import Hit

Variant = Callable[[Mapping[str, list[Hit]]], list[Hit]]


@dataclass
class Candidates:
    """Per query: the ranked BM25 and dense hits, and how long each search took (ms)."""

    lists: dict[str, dict[str, list[Hit]]] = field(default_factory=dict)
    ms: dict[str, list[float]] = field(default_factory=lambda: {"bm25": [], "dense": []})


def gather(
    index: Index, collection: str, queries: Mapping[str, str], depth: int = 100, progress: bool = True
) -> Candidates:
    candidates = Candidates()
    for qid, text in tqdm(queries.items(), desc="search", unit="query", disable=not progress):
        started = time.perf_counter()
        bm25 = index.search_bm25(collection, text, depth)
        middle = time.perf_counter()
        dense = index.search_dense(collection, text, depth)
        candidates.ms["bm25"].append((middle - started) * 1000)
        candidates.ms["dense"].append((time.perf_counter() - middle) * 1000)
        candidates.lists[qid] = {"bm25": bm25, "dense": dense}
    return candidates


def doc_ranking(hits: Sequence[Hit]) -> list[str]:
    """Chunk hits → document ids in rank order (a document ranks at its best chunk)."""
    return [hit.chunk.doc_id for hit in hits]


def standard_variants(rrf_k: int = 60, alphas: Sequence[float] = ()) -> dict[str, Variant]:
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
    results: dict[str, dict[str, float]] = {}
    for name, variant in variants.items():
        run = {qid: doc_ranking(variant(lists)) for qid, lists in candidates.lists.items()}
        results[name] = evaluate_retrieval(run, {q: qrels[q] for q in candidates.lists if q in qrels}, ks)
    return results


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
    width = max(len(name) for name in results) + 2
    lines = ["variant".ljust(width) + "".join(c.rjust(11) for c in columns)]
    for name, scores in results.items():
        lines.append(name.ljust(width) + "".join(f"{scores[c]:11.4f}" for c in columns))
    return "\n".join(lines)
