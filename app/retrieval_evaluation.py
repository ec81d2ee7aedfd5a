"""``ragline eval retrieval`` as a library call: ingest a BEIR corpus, score the retrieval variants, write the report.

This module wires app objects (settings, the index, the configured reranker) to ``eval.retrieval_quality``, which
does the scoring. The corpus is ingested incrementally into a collection whose name holds the chunker and the
subset, and each document's hash the chunker's settings, so a cached collection is reused only for the same corpus,
chunker and settings: a second run re-embeds nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.corpus_collections import describe_corpus_failures, describe_corpus_ingest, ensure_corpus_collection
from app.resources import Resources
from app.run_log import RunLog
from app.settings import Settings
from eval.beir import BeirFiles, load_corpus, load_qrels, load_queries
from eval.corpus_subset import corpus_subset
from eval.rerank_quality import rerank_variant
from eval.retrieval_quality import (
    BestFusion,
    Candidates,
    Variant,
    best_fusion,
    evaluate_variants,
    format_table,
    gather,
    headline_columns,
    latency_summary,
    per_query_ndcg,
    pipeline_variants,
    select_judged_queries,
)

__all__ = [
    "EvaluationData",
    "RetrievalEvalRequest",
    "RetrievalEvaluation",
    "load_evaluation_data",
    "run_retrieval_evaluation",
]


@dataclass(frozen=True)
class RetrievalEvalRequest:
    """What to evaluate: the BEIR files, which pipeline (``eval.retrieval_quality.PIPELINES``) and how.

    ``alphas`` is the convex-fusion sweep of pipeline ``all``; ``collection`` ``None`` derives the name from the
    corpus folder, the chunker and the subset; ``corpus_sample`` indexes only that many documents (every judged one
    plus a ``seed``-ed sample); ``json_out`` ``None`` writes the report under the reports folder.
    """

    files: BeirFiles
    pipeline: str = "all"
    k: int = 10
    depth: int = 100
    alphas: tuple[float, ...] = ()
    collection: str | None = None
    chunker: str = "fixed"
    limit: int | None = None
    corpus_sample: int | None = None
    seed: int = 0
    json_out: Path | None = None


@dataclass(frozen=True)
class RetrievalEvaluation:
    """The outcome: the table of variants, the α sweep's verdict (pipeline ``all``), latency and the report file."""

    dataset: str
    queries: int
    depth: int
    k: int
    table: str
    best: BestFusion | None
    latency_ms: dict[str, float]
    report_path: Path


@dataclass(frozen=True)
class EvaluationData:
    """The documents to index, the judgments, the queries evaluated, the collection and the subset's record."""

    documents: dict[str, dict[str, str]]
    judged: dict[str, dict[str, int]]
    queries: dict[str, str]
    collection: str
    subset: dict[str, object] | None


def run_retrieval_evaluation(settings: Settings, request: RetrievalEvalRequest, log: RunLog) -> RetrievalEvaluation:
    """Load the files, ingest the corpus (or its subset), score every variant of ``request.pipeline`` on the judged
    queries and write the JSON report. Raises ``ValueError``/``FileNotFoundError`` for bad input or a missing model,
    ``LLMUnavailableError`` when a chunker needs the generator and it is down."""
    data = load_evaluation_data(request, log)
    resources = Resources(settings)
    summary = ensure_corpus_collection(
        resources, data.collection, data.documents, request.chunker, prune=data.subset is not None
    )
    log.info(describe_corpus_ingest(summary))
    if failures := describe_corpus_failures(summary):
        log.warn(failures)

    candidates = gather(resources.index, data.collection, data.queries, request.depth)
    sweep = list(request.alphas) if request.pipeline == "all" else []
    variants = pipeline_variants(
        request.pipeline, rrf_k=settings.rrf_k, fusion=settings.fusion, fusion_alpha=settings.fusion_alpha, alphas=sweep
    )
    if request.pipeline in ("hybrid+rerank", "rerank-modes"):
        fuse = next(iter(variants.values()))
        variants.update(_rerank_variants(resources, candidates, data.queries, fuse, request.pipeline))
    results = evaluate_variants(candidates, data.judged, variants, sorted({1, request.k, 10, 100}))
    best = best_fusion(results, f"ndcg@{request.k}", settings.rrf_k) if sweep else None
    latency = latency_summary(candidates)
    report: dict[str, Any] = {
        "corpus": str(request.files.corpus),
        "qrels": str(request.files.qrels),
        "queries": len(data.queries),
        "depth": request.depth,
        "chunker": request.chunker,
        "chunk_size": settings.chunk_size,
        "collection": data.collection,
        "corpus_documents": len(data.documents),
        "corpus_subset": data.subset,
        "bm25": resources.index.bm25_config.as_dict(),
        "results": results,
        "per_query": {f"ndcg@{request.k}": per_query_ndcg(candidates, data.judged, variants, request.k)},
        "latency_ms": latency,
    }
    if best is not None:
        report["best"] = best.as_dict()
    dataset = request.files.corpus.parent.name
    out = request.json_out or settings.reports_dir / f"retrieval-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    table = format_table(results, headline_columns(request.k))
    return RetrievalEvaluation(dataset, len(data.queries), request.depth, request.k, table, best, latency, out)


def load_evaluation_data(request: RetrievalEvalRequest, log: RunLog) -> EvaluationData:
    """Read the files, pick the judged queries and, with ``corpus_sample``, the documents kept (said in ``log``)."""
    files = request.files
    documents = load_corpus(files.corpus)
    judged = load_qrels(files.qrels)
    queries = select_judged_queries(judged, load_queries(files.queries), request.limit, files.queries)
    name = request.collection or f"beir-{files.corpus.resolve().parent.name}" + (
        "" if request.chunker == "fixed" else f"-{request.chunker}"
    )
    if request.corpus_sample is None:
        return EvaluationData(documents, judged, queries, name, None)
    kept = corpus_subset(documents, {q: judged[q] for q in queries}, request.corpus_sample, request.seed)
    subset: dict[str, object] = {
        "documents": len(kept),
        "seed": request.seed,
        "rule": "judged for the evaluated queries + seeded sample",
    }
    if request.collection is None:
        name += f"-sample{request.corpus_sample}-seed{request.seed}" + (f"-q{request.limit}" if request.limit else "")
    log.info(f"corpus subset: {len(kept)} documents (every judged one + seed-{request.seed} sample) → {name}")
    return EvaluationData({doc_id: documents[doc_id] for doc_id in kept}, judged, queries, name, subset)


def _rerank_variants(
    resources: Resources, candidates: Candidates, queries: dict[str, str], fuse: Variant, pipeline: str
) -> dict[str, Variant]:
    """``hybrid+rerank`` with the configured reranker in the configured ``rerank_mode``, or with ``rerank-modes``
    both modes side by side on the same fused lists; ``ValueError`` when no reranker is configured."""
    settings = resources.settings
    if settings.reranker is None:
        raise ValueError(f"--pipeline {pipeline} needs RAGLINE_RERANKER (train one: `ragline reranker train`)")
    modes = ["isolated", "long-context"] if pipeline == "rerank-modes" else [settings.rerank_mode]
    variants: dict[str, Variant] = {}
    for mode in modes:
        top_n, weight = settings.rerank_top_n, settings.rerank_weight
        if mode == "long-context":
            joint = resources.long_context_reranker_for(settings)
            assert joint is not None
            name = "hybrid+long-rerank" if pipeline == "rerank-modes" else "hybrid+rerank"
            variants.update(
                rerank_variant(joint, candidates, queries, fuse, top_n, weight=weight, name=name, timing="long-rerank")
            )
        else:
            reranker = resources.reranker_for(settings)
            assert reranker is not None
            variants.update(rerank_variant(reranker, candidates, queries, fuse, top_n, weight=weight))
    return variants
