"""``ragline reranker eval`` as a library call: a trained reranker on its held-out queries, per inference engine.

The hybrid candidate lists come from the index with the configured fusion (the app's part); scoring and timing are
``eval.rerank_quality``'s. The report goes to a JSON file and into the model's card, so the card always shows the
latest held-out numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.reranker.card import CARD, read_record, write_record
from app.reranker.data import hybrid_search, split_queries
from app.resources import Resources
from app.run_log import RunLog
from app.settings import Settings
from eval.beir import BeirDataset, load_beir
from eval.rerank_quality import compare, rerank_latency
from retrieval.index import Index
from retrieval.rerank import CrossEncoderReranker
from retrieval.types import Hit

__all__ = ["HeldOutEvaluation", "RerankerEvalRequest", "evaluate_reranker", "held_out_results", "hybrid_lists"]

CANDIDATE_DEPTH = 100
LATENCY_DEPTHS = (20, 50)


@dataclass(frozen=True)
class RerankerEvalRequest:
    """A model folder written by ``ragline reranker train`` and the BEIR split holding its held-out queries.

    A model without recorded held-out queries (synthetic mode) is scored on the split that ``held_out``/``seed``
    give, the one a supervised run with those values holds out. ``top_n`` ``None`` is ``rerank_top_n``.
    """

    model: Path
    beir: Path
    split: str = "train"
    backends: Sequence[str] = ("torch", "onnx-int8")
    top_n: int | None = None
    held_out: int = 209
    seed: int = 13
    latency_queries: int = 30
    limit: int | None = None
    k: int = 10
    json_out: Path | None = None


@dataclass(frozen=True)
class HeldOutEvaluation:
    """The report (also written to ``report_path`` and the model card) and the card's path."""

    report: dict[str, Any]
    report_path: Path
    card: Path


def hybrid_lists(
    index: Index, settings: Settings, collection: str, queries: Mapping[str, str], depth: int, progress: bool = True
) -> dict[str, list[Hit]]:
    """Each query's hybrid hits to ``depth``, fused as the query pipeline fuses them."""
    return {
        qid: hybrid_search(index, settings, collection, text, depth)
        for qid, text in tqdm(queries.items(), desc="hybrid search", unit="query", disable=not progress)
    }


def held_out_results(
    resources: Resources,
    collection: str,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    rerankers: Mapping[str, CrossEncoderReranker],
    top_n: int,
    k: int,
) -> tuple[dict[str, list[Hit]], dict[str, dict[str, float]]]:
    """The hybrid lists of ``queries`` and the metrics of plain hybrid and of each reranker over the same lists."""
    settings = resources.settings
    lists = hybrid_lists(resources.index, settings, collection, queries, depth=CANDIDATE_DEPTH)
    results = compare(lists, queries, qrels, rerankers, top_n, ks=sorted({1, k, 100}), weight=settings.rerank_weight)
    return lists, results


def evaluate_reranker(settings: Settings, request: RerankerEvalRequest, log: RunLog) -> HeldOutEvaluation:
    """nDCG@k of hybrid vs hybrid+rerank per engine, and rerank latency at top-20/50. Raises ``FileNotFoundError``
    or ``ValueError`` (no record, no held-out queries, bad split) and ``RerankerError`` (a model that cannot load)."""
    record = read_record(request.model)
    dataset = load_beir(request.beir, request.split)
    rerankers = {
        f"hybrid+rerank({backend})": CrossEncoderReranker(
            request.model,
            max_length=settings.rerank_max_length,
            batch_size=settings.rerank_batch_size,
            backend=backend,  # type: ignore[arg-type]
        )
        for backend in dict.fromkeys(request.backends)
    }
    held = _held_out_qids(record, dataset, request, log)
    queries = {qid: dataset.queries[qid] for qid in held[: request.limit]}
    top_n = request.top_n or settings.rerank_top_n
    lists, results = held_out_results(
        Resources(settings), record["data"]["collection"], queries, dataset.qrels, rerankers, top_n, request.k
    )
    latency = {
        f"{reranker.backend} top-{depth}": rerank_latency(reranker, lists, queries, depth, request.latency_queries)
        for depth in LATENCY_DEPTHS
        for reranker in rerankers.values()
    }
    report = {
        "queries": len(lists),
        "top_n": top_n,
        "k": request.k,
        "max_length": settings.rerank_max_length,
        "weight": settings.rerank_weight,
        "results": results,
        "latency": latency,
    }
    record["held_out"] = report
    write_record(request.model, record)
    target = (
        request.json_out
        or settings.reports_dir / f"reranker-{request.model.name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2))
    return HeldOutEvaluation(report, target, request.model / CARD)


def _held_out_qids(
    record: Mapping[str, Any], dataset: BeirDataset, request: RerankerEvalRequest, log: RunLog
) -> list[str]:
    """The queries the model recorded as held out; for a synthetic model, the split a supervised run would hold out.
    ``ValueError`` when there are none."""
    held = [qid for qid in record.get("held_out_qids", []) if qid in dataset.queries]
    if not held and record.get("mode") == "synthetic":
        held = split_queries(list(dataset.queries), request.held_out, request.seed)[1]
        log.info(
            f"synthetic model: scoring the {len(held)} held-out queries of --held-out {request.held_out} "
            f"--seed {request.seed}"
        )
    if not held:
        raise ValueError(
            f"{request.model} records no held-out queries of {request.beir} ({request.split}); train it with --held-out"
        )
    return held
