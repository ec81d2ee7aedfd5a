"""``ragline eval select``: chunk size and fusion α chosen under the fit/choose/report protocol.

Both were set by design, not tuned on data (256-token chunks, α 0.5). A collection's owner who tunes them on their
own judged queries must choose on one part and report on another, or the reported gain includes the choice (the
fault found in the reranker's first numbers). This scores every (chunk size, α) pair on the same queries, picks
the best on ``choose``, and reports it on ``report`` with a paired bootstrap interval over the configured pair.
The split is the reranker's (``eval.splits``: the same seed and sizes give the same ``report`` queries), so one
``report`` part stays untouched by every choice made on a dataset. Retrieval learns nothing, so ``fit`` is unused.
Each chunk size is its own collection; content hashes make a second run re-embed nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.corpus_collections import describe_corpus_failures, describe_corpus_ingest, ensure_corpus_collection
from app.resources import Resources
from app.retrieval_evaluation import RetrievalEvalRequest, load_evaluation_data
from app.run_log import RunLog
from app.settings import Settings
from eval.beir import BeirFiles
from eval.retrieval_quality import doc_ranking, gather
from eval.selection import Selection, choose_then_report, per_query_ndcg
from eval.splits import DEFAULT_CHOOSE, DEFAULT_REPORT, split_queries_three_way
from retrieval.fusion import ConvexFusion

__all__ = ["RetrievalSelectionRequest", "candidate_label", "run_retrieval_selection"]


@dataclass(frozen=True)
class RetrievalSelectionRequest:
    """The BEIR files, the candidates (the configured chunk size and α are always among them) and the split."""

    files: BeirFiles
    chunk_sizes: tuple[int, ...]
    alphas: tuple[float, ...]
    choose: int = DEFAULT_CHOOSE
    report: int = DEFAULT_REPORT
    split_seed: int = 13
    k: int = 10
    depth: int = 100
    corpus_sample: int | None = None
    sample_seed: int = 0
    json_out: Path | None = None


def candidate_label(chunk_size: int, alpha: float) -> str:
    return f"size={chunk_size} α={alpha:.2f}"


def run_retrieval_selection(
    settings: Settings, request: RetrievalSelectionRequest, log: RunLog
) -> tuple[Selection, Path]:
    """Ingest one collection per chunk size, score hybrid retrieval at every α on the ``choose`` and ``report``
    queries, choose on ``choose``; return the selection and the JSON report written. ``ValueError`` for a fusion
    that has no α (RRF), a split the queries cannot hold, or bad files."""
    if settings.fusion != "convex":
        raise ValueError(f"fusion is {settings.fusion!r}: α is a convex-fusion weight (set RAGLINE_FUSION=convex)")
    data = load_evaluation_data(
        RetrievalEvalRequest(request.files, corpus_sample=request.corpus_sample, seed=request.sample_seed), log
    )
    split = split_queries_three_way(
        list(data.queries), choose=request.choose, report=request.report, seed=request.split_seed
    )
    ids = [*split.choose, *split.report]
    queries = {qid: data.queries[qid] for qid in ids}
    qrels = {qid: data.judged[qid] for qid in ids}
    sizes = list(dict.fromkeys([settings.chunk_size, *request.chunk_sizes]))
    alphas = list(dict.fromkeys([settings.fusion_alpha, *request.alphas]))
    per_query: dict[str, dict[str, float]] = {}
    collections: dict[int, str] = {}
    overlaps: dict[int, int] = {}
    for size in sizes:
        sized = _with_chunk_size(settings, size)
        overlaps[size] = sized.chunk_overlap
        # The configured size keeps the plain name, so the collection `eval retrieval` built is reused as it is.
        name = data.collection if size == settings.chunk_size else f"{data.collection}-cs{size}"
        resources = Resources(sized)
        summary = ensure_corpus_collection(resources, name, data.documents, "fixed", prune=data.subset is not None)
        log.info(f"chunk size {size}: {describe_corpus_ingest(summary)}")
        if failures := describe_corpus_failures(summary):
            log.warn(failures)
        lists = gather(resources.index, name, queries, request.depth).lists
        collections[size] = name
        for alpha in alphas:
            fusion = ConvexFusion(alpha)
            rankings = {qid: doc_ranking(fusion.fuse(lists[qid])) for qid in ids}
            per_query[candidate_label(size, alpha)] = per_query_ndcg(rankings, qrels, request.k)
    baseline = candidate_label(settings.chunk_size, settings.fusion_alpha)
    selection = choose_then_report("chunk size and fusion α", per_query, baseline, split.choose, split.report)
    report: dict[str, Any] = {
        "corpus": str(request.files.corpus),
        "qrels": str(request.files.qrels),
        "split": split.as_record(),
        "k": request.k,
        "collections": collections,
        "corpus_subset": data.subset,
        "chunk_overlap": overlaps,
        **selection.as_dict(),
        "per_query": per_query,
    }
    dataset = request.files.corpus.parent.name
    out = request.json_out or settings.reports_dir / f"select-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return selection, out


def _with_chunk_size(settings: Settings, size: int) -> Settings:
    """``settings`` chunking at ``size`` tokens; the configured overlap is kept where it fits, else an eighth."""
    overlap = settings.chunk_overlap if settings.chunk_overlap < size else size // 8
    return settings.model_copy(update={"chunk_size": size, "chunk_overlap": overlap})
