"""``ragline reranker eval`` as a library call: a trained reranker's tuned choices, made on ``choose`` and reported
on ``report`` (``eval.splits``), and its latency beside hybrid search's in the same run.

The hybrid candidate lists come from the index with the configured fusion (the app's part); selection, scoring
and timing are ``eval.rerank_selection``'s, ``eval.selection``'s and ``eval.rerank_quality``'s. The report goes to
a JSON file and into the model's card, so the card always shows the latest numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import median
from typing import Any

from tqdm import tqdm

from app.reranker.card import CARD, read_record, write_record
from app.reranker.data import hybrid_search
from app.reranker.refit import FixedSettings
from app.resources import Resources
from app.run_log import RunLog
from app.settings import Settings
from eval.beir import BeirDataset, load_beir
from eval.rerank_quality import rerank_latency
from eval.rerank_selection import (
    DEFAULT_WEIGHTS,
    HitScorer,
    candidate_parts,
    isolated_scorer,
    joint_scorer,
    rerank_selection,
)
from eval.retrieval_quality import gather
from eval.selection import alpha_selection
from eval.splits import DEFAULT_CHOOSE, DEFAULT_REPORT, QuerySplit, split_from_record, split_queries_three_way
from retrieval.index import Index
from retrieval.long_rerank import LongContextReranker
from retrieval.rerank import CrossEncoderReranker
from retrieval.types import Hit

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_CHOOSE",
    "DEFAULT_REPORT",
    "HeldOutEvaluation",
    "RerankerEvalRequest",
    "evaluate_reranker",
    "hybrid_lists",
    "selection_report",
]

CANDIDATE_DEPTH = 100
LATENCY_DEPTHS = (20, 50)
DEFAULT_ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class RerankerEvalRequest:
    """A model folder written by ``ragline reranker train`` and the BEIR split it was trained on.

    A model that recorded its split is scored on that split's ``choose`` and ``report`` parts; one without
    (synthetic mode, no labels seen) on the split that ``choose``/``report``/``seed`` give. ``top_n`` holds the
    rerank depths to choose among (empty: ``rerank_top_n`` alone); ``lengths`` are the isolated pair lengths tried
    and ``context_lengths`` the long-context joint lengths (``rerank_mode = long-context``), all candidates of one
    choice made on ``choose``.
    """

    model: Path
    beir: Path
    split: str = "train"
    backends: Sequence[str] = ("torch", "onnx-int8")
    top_n: Sequence[int] = ()
    choose: int = DEFAULT_CHOOSE
    report: int = DEFAULT_REPORT
    seed: int = 13
    lengths: Sequence[int] = (128, 192, 256)
    context_lengths: Sequence[int] = ()
    weights: Sequence[float] = DEFAULT_WEIGHTS
    alphas: Sequence[float] = DEFAULT_ALPHAS
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
    return timed_hybrid_lists(index, settings, collection, queries, depth, progress)[0]


def timed_hybrid_lists(
    index: Index, settings: Settings, collection: str, queries: Mapping[str, str], depth: int, progress: bool = True
) -> tuple[dict[str, list[Hit]], list[float]]:
    """``hybrid_lists`` and each search's milliseconds, for rerank latency as a ratio to search in one run."""
    lists, ms = {}, []
    for qid, text in tqdm(queries.items(), desc="hybrid search", unit="query", disable=not progress):
        started = time.perf_counter()
        lists[qid] = hybrid_search(index, settings, collection, text, depth)
        ms.append((time.perf_counter() - started) * 1000)
    return lists, ms


def selection_report(
    resources: Resources,
    collection: str,
    model: Path,
    dataset: BeirDataset,
    split: QuerySplit,
    request: RerankerEvalRequest,
    fixed: FixedSettings | None = None,
) -> dict[str, Any]:
    """Every tuned choice made on ``choose`` and reported on ``report``: α of the fusion, then pair length and blend
    weight (or a calibrated blend) of the reranker; and the chosen reranker's latency beside hybrid search's. A
    refit model (trained on ``choose`` too) is scored with its ``fixed`` settings only: nothing is chosen."""
    settings = resources.settings
    if fixed is not None:
        request = fixed_request(request, fixed)
    choose = list(split.choose)[: request.limit]
    report = list(split.report)[: request.limit]
    queries = {qid: dataset.queries[qid] for qid in [*choose, *report]}
    lists, search_ms = timed_hybrid_lists(resources.index, settings, collection, queries, CANDIDATE_DEPTH)
    top_n = tuple(request.top_n) or (settings.rerank_top_n,)
    limited = QuerySplit(split.seed, split.fit, tuple(choose), tuple(report))
    scorers: dict[str, HitScorer] = {}
    for length in dict.fromkeys(request.lengths):
        scorers[f"len={length}"] = isolated_scorer(_cross_encoder(model, length, settings))
    for length in dict.fromkeys(request.context_lengths):
        scorers[f"long={length}"] = joint_scorer(LongContextReranker(_cross_encoder(model, length, settings)))
    selection = rerank_selection(
        lists, queries, dataset.qrels, limited, scorers, top_n=top_n, k=request.k, weights=request.weights,
        calibrate=fixed is None, fixed=fixed.label if fixed else None,
    )  # fmt: skip
    selection["split"] = split.as_record()  # the whole split's record, also when --limit scored a part of it
    alpha = None
    if request.alphas and settings.fusion == "convex":
        raw = gather(resources.index, collection, queries, CANDIDATE_DEPTH).lists
        chosen_alpha = alpha_selection(
            raw, dataset.qrels, choose, report, request.alphas, settings.fusion_alpha, request.k
        )
        alpha = chosen_alpha.as_dict()
        selection["printed"] = [*_alpha_lines(chosen_alpha), *selection["printed"]]
    mode, length = _chosen_scorer(str(selection["overall"]["chosen"]), request, settings)
    latency = {}
    for backend in dict.fromkeys(request.backends):
        reranker: CrossEncoderReranker | LongContextReranker = _cross_encoder(model, length, settings, backend)
        if mode == "long-context":
            reranker = LongContextReranker(reranker)
        for depth in LATENCY_DEPTHS:
            latency[f"{backend} top-{depth}"] = rerank_latency(reranker, lists, queries, depth, request.latency_queries)
    hybrid_p50 = round(median(search_ms), 1)
    return {
        **selection,
        "alpha": alpha,
        "backend": settings.rerank_backend,
        "latency_mode": mode,
        "latency_length": length,
        "latency": latency,
        "hybrid_search_p50_ms": hybrid_p50,
        "rerank_to_search_ratio": {
            name: round(t["median_ms"] / hybrid_p50, 2) for name, t in latency.items() if hybrid_p50 > 0
        },
    }


def fixed_request(request: RerankerEvalRequest, fixed: FixedSettings) -> RerankerEvalRequest:
    """``request`` narrowed to one candidate, ``fixed``: its length, depth and weight, no fusion α."""
    isolated = fixed.mode == "isolated"
    return replace(
        request,
        lengths=(fixed.length,) if isolated else (),
        context_lengths=() if isolated else (fixed.length,),
        top_n=(fixed.top_n,),
        weights=(fixed.weight,),
        alphas=(),
    )


def _cross_encoder(model: Path, length: int, settings: Settings, backend: str | None = None) -> CrossEncoderReranker:
    return CrossEncoderReranker(
        model,
        max_length=length,
        batch_size=settings.rerank_batch_size,
        backend=backend or settings.rerank_backend,  # type: ignore[arg-type]
    )


def _chosen_scorer(chosen: str, request: RerankerEvalRequest, settings: Settings) -> tuple[str, int]:
    """The rerank mode and length of the chosen candidate (``len=192 w=0.1``, ``long=512 n=20 calibrated``). When
    hybrid alone wins, the first scorer tried is timed (what the reranker would cost), not the global default
    length, which may not have been tried at all."""
    parts = candidate_parts(chosen)
    if "len" in parts:
        return "isolated", int(parts["len"])
    if "long" in parts:
        return "long-context", int(parts["long"])
    if request.lengths:
        return "isolated", request.lengths[0]
    if request.context_lengths:
        return "long-context", request.context_lengths[0]
    length = settings.rerank_context_tokens if settings.rerank_mode == "long-context" else settings.rerank_max_length
    return settings.rerank_mode, length


def evaluate_reranker(settings: Settings, request: RerankerEvalRequest, log: RunLog) -> HeldOutEvaluation:
    """The choose/report selection of a trained model and its latency. Raises ``FileNotFoundError`` or
    ``ValueError`` (no record, a split its data no longer rebuilds) and ``RerankerError`` (a model that cannot
    load)."""
    record = read_record(request.model)
    dataset = load_beir(request.beir, request.split)
    split = _split(record, dataset, request, log)
    fixed = FixedSettings.from_record(record["refit_of"]) if record.get("refit_of") else None
    if fixed is not None:
        log.info(
            f"a refit (trained on fit and choose): scoring only the settings chosen for {record['refit_of']['model']}"
            f" ({fixed.label}, top {fixed.top_n}); candidate options are not used"
        )
    report = selection_report(
        Resources(settings), record["data"]["collection"], request.model, dataset, split, request, fixed=fixed
    )
    record["evaluation"] = report
    write_record(request.model, record)
    target = (
        request.json_out
        or settings.reports_dir / f"reranker-{request.model.name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return HeldOutEvaluation(report, target, request.model / CARD)


def _split(record: Mapping[str, Any], dataset: BeirDataset, request: RerankerEvalRequest, log: RunLog) -> QuerySplit:
    """The split the model recorded (rebuilt and checked); for a model that saw no labels (synthetic), the split of
    ``--choose/--report/--seed``. A supervised model from before the protocol has no split: it cannot be scored
    honestly (its held-out queries chose its settings), so ``ValueError`` says to retrain."""
    if "split" in record.get("data", {}):
        return split_from_record(list(dataset.queries), record["data"]["split"])
    if record.get("mode") == "synthetic":
        log.info(
            f"synthetic model: scoring the choose/report parts of --choose {request.choose} --report "
            f"{request.report} --seed {request.seed}"
        )
        return split_queries_three_way(
            list(dataset.queries), choose=request.choose, report=request.report, seed=request.seed
        )
    raise ValueError(
        f"{request.model} records no fit/choose/report split (trained before the protocol): retrain it with "
        "`ragline reranker train --beir ...`"
    )


def _alpha_lines(selection: Any) -> list[str]:
    from eval.selection import format_selection

    return [*format_selection(selection), ""]
