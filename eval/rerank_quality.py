"""Reranker quality: hybrid vs hybrid+rerank on the same candidate lists, and rerank latency.

Every variant reorders the *same* hybrid lists (fetched once per query), so the difference in nDCG is the
reranker's alone; latency is timed in one process, fp32 and int8 side by side, so their ratio holds even on a
busy machine where the absolute milliseconds do not. The candidate lists come from the caller (the app runs the
hybrid search), so this module needs no settings.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from statistics import median

from tqdm import tqdm

from eval.metrics import evaluate_retrieval
from eval.retrieval_quality import Candidates, Variant, doc_ranking
from retrieval.long_rerank import LongContextReranker
from retrieval.rerank import CrossEncoderReranker
from retrieval.types import Hit

HYBRID = "hybrid"
AnyReranker = CrossEncoderReranker | LongContextReranker
"""Isolated or long-context: both rerank a hit list with ``rerank(query, hits, weight)``."""


def rerank_head(reranker: AnyReranker, query: str, hits: Sequence[Hit], top_n: int, weight: float = 1.0) -> list[Hit]:
    """The first ``top_n`` hits reranked, the rest after them in their original order (for recall at depth)."""
    return reranker.rerank(query, hits[:top_n], weight) + list(hits[top_n:])


def compare(
    lists: Mapping[str, list[Hit]],
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    rerankers: Mapping[str, CrossEncoderReranker],
    top_n: int,
    ks: Sequence[int] = (1, 10, 100),
    progress: bool = True,
    weight: float = 1.0,
) -> dict[str, dict[str, float]]:
    """Metrics of plain hybrid and of hybrid reranked by each of ``rerankers`` (keyed by variant name)."""
    judged = {qid: qrels[qid] for qid in lists if qid in qrels}
    results = {HYBRID: evaluate_retrieval({q: doc_ranking(h) for q, h in lists.items()}, judged, ks)}
    for name, reranker in rerankers.items():
        run = {
            qid: doc_ranking(rerank_head(reranker, queries[qid], hits, top_n, weight))
            for qid, hits in tqdm(lists.items(), desc=f"rerank ({name})", unit="query", disable=not progress)
        }
        results[name] = evaluate_retrieval(run, judged, ks)
    return results


def rerank_latency(
    reranker: CrossEncoderReranker | LongContextReranker,
    lists: Mapping[str, list[Hit]],
    queries: Mapping[str, str],
    top_n: int,
    limit: int = 30,
) -> dict[str, float]:
    """Median and p90 milliseconds to rerank the top ``top_n`` hits, over the first ``limit`` queries (one warm-up)."""
    chosen = list(lists.items())[:limit]
    if not chosen:
        raise ValueError("no queries to time")
    reranker.rerank(queries[chosen[0][0]], chosen[0][1][:top_n])
    timings = []
    for qid, hits in chosen:
        started = time.perf_counter()
        reranker.rerank(queries[qid], hits[:top_n])
        timings.append((time.perf_counter() - started) * 1000)
    ordered = sorted(timings)
    return {
        "median_ms": round(median(ordered), 1),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
        "queries": len(ordered),
    }


def rerank_variant(
    reranker: AnyReranker,
    candidates: Candidates,
    queries: Mapping[str, str],
    fuse: Variant,
    top_n: int,
    progress: bool = True,
    weight: float = 1.0,
    name: str = "hybrid+rerank",
    timing: str = "rerank",
) -> dict[str, Variant]:
    """A ``hybrid+rerank`` variant (called ``name``) for ``ragline eval retrieval``: each query's fused list is
    reranked once here (timed into ``candidates.ms[timing]``), so the variant itself only looks the result up.

    Variants receive a query's ``{"bm25", "dense"}`` dict and nothing else, so the result is keyed by that dict's
    identity; it is not stored in the dict, where the fusion variants would see an unknown list."""
    candidates.ms[timing] = []
    reranked: dict[int, list[Hit]] = {}
    for qid, lists in tqdm(candidates.lists.items(), desc=name, unit="query", disable=not progress):
        fused = fuse(lists)
        started = time.perf_counter()
        reranked[id(lists)] = rerank_head(reranker, queries[qid], fused, top_n, weight)
        candidates.ms[timing].append((time.perf_counter() - started) * 1000)
    return {name: lambda lists: reranked[id(lists)]}
