"""``ragline reranker train`` as a library call: mine training pairs, fine-tune a cross-encoder, record and evaluate it.

Two sources of queries: supervised (a BEIR folder's qrels, cut into fit/choose/report by ``eval.splits``: trained on
``fit``, pair length and blend chosen on ``choose``, reported on ``report``) or synthetic (the generator writes a
question per sampled chunk of a collection; no labels, so no evaluation here). Either way hard
negatives come from ragline's own hybrid retrieval. The mined pairs are saved next to the model, so a resumed run
trains on exactly the same data from its last checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.corpus_collections import describe_corpus_failures, describe_corpus_ingest, ensure_corpus_collection
from app.model_registry import ModelRole
from app.reranker.card import training_record, write_record
from app.reranker.data import MinedPairs, Pair, beir_queries, load_pairs, mine_pairs, save_pairs
from app.reranker.evaluation_run import RerankerEvalRequest, selection_report
from app.reranker.refit import FixedSettings, refit_recipe
from app.reranker.synthetic import synthetic_pairs
from app.reranker.train import TrainConfig, train_cross_encoder
from app.resources import Resources, resolve_model_dir
from app.run_log import RunLog
from app.settings import Settings
from eval.beir import BeirDataset, load_beir
from eval.splits import DEFAULT_CHOOSE, DEFAULT_REPORT, QuerySplit, split_queries_three_way

__all__ = ["TrainingOutcome", "TrainingRequest", "train_reranker"]

PAIRS_FILE = "training-pairs.jsonl"
PAIRS_STATS_FILE = "training-pairs.stats.json"
SYNTHETIC_FILE = "synthetic-questions.json"


@dataclass(frozen=True)
class TrainingRequest:
    """Supervised with ``beir`` (a BEIR folder whose ``split`` queries are cut into fit/choose/report by
    ``eval.splits``: training sees ``fit`` only, settings are chosen on ``choose``, ``report`` is the number to quote),
    else synthetic on
    ``collection`` (``questions`` sampled chunks, ``per_chunk`` styles each, kept when hybrid search finds the
    source chunk in the top ``filter_top_k``). ``collection`` ``None`` with ``beir`` is ``beir-<folder>``, ingested
    if needed; ``out`` ``None`` is ``<models_dir>/reranker-<collection>``; ``base`` ``None`` is the embedder.
    ``training.seed`` also seeds the split and the sampling."""

    training: TrainConfig
    beir: Path | None = None
    split: str = "train"
    choose: int = DEFAULT_CHOOSE
    report: int = DEFAULT_REPORT
    lengths: tuple[int, ...] = ()
    """Pair lengths tried at the end-of-training selection (empty: the training length and ``rerank_max_length``)."""
    questions: int = 300
    per_chunk: int = 1
    filter_top_k: int = 10
    collection: str | None = None
    out: Path | None = None
    base: str | None = None
    negatives: int = 3
    depth: int = 30
    resume: bool = True
    k: int = 10
    refit_of: Path | None = None
    """Supervised: a fit-only model whose recipe and chosen settings are retrained on ``fit`` and ``choose``
    together (``app.reranker.refit``); its recipe replaces this request's."""


@dataclass(frozen=True)
class TrainingOutcome:
    """The model folder, its record (``ragline-reranker.json``, held-out metrics included) and the wall time."""

    model: Path
    record: dict[str, Any]
    minutes: float


@dataclass
class _TrainingData:
    """Where the model goes and what it is trained on; the held-out queries it is then scored on."""

    collection: str
    target: Path
    pairs: list[Pair]
    stats: dict[str, int]
    source: str
    dataset: BeirDataset | None = None
    split: QuerySplit | None = None
    notes: list[str] = field(default_factory=list)


def train_reranker(settings: Settings, request: TrainingRequest, log: RunLog) -> TrainingOutcome:
    """Mine (or reuse) the pairs, train, write the model card and record, then score the held-out queries.

    Raises ``FileNotFoundError`` (model, folder or collection missing), ``ValueError``/``LookupError`` (bad data or
    options), ``LLMUnavailableError`` and ``TextGenerationError`` (synthetic mode without a generator)."""
    resources = Resources(settings)
    started = time.perf_counter()
    refit: dict[str, Any] | None = None
    if request.refit_of is not None:
        request, refit = _refit_request(request, request.refit_of, log)
    base_dir = resolve_model_dir(settings, request.base or settings.embedder, ModelRole.EMBEDDER)
    if request.beir is not None:
        data = _supervised(resources, request, request.beir, log)
    else:
        data = _synthetic(resources, request, log)
    positives = int(data.stats["positives"])
    log.info(f"{len(data.pairs)} training pairs ({positives} positive) from {data.stats['queries']} queries")
    result = train_cross_encoder(base_dir, data.pairs, data.target, request.training, resume=request.resume)
    log.info(f"trained {result.steps} steps in {result.seconds / 60:.1f} min (loss {result.training_loss:.4f})")
    record: dict[str, Any] = {
        "name": data.target.name,
        "mode": "supervised" if request.beir is not None else "synthetic",
        "base": str(base_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "data": {
            "source": data.source,
            "collection": data.collection,
            "queries": data.stats["queries"],
            "skipped": data.stats.get("skipped", 0),
            "pairs": len(data.pairs),
            "positives": positives,
            "negatives": len(data.pairs) - positives,
            "negatives_per_query": request.negatives,
            "depth": request.depth,
            "seed": request.training.seed,
            "notes": data.notes,
        },
        "training": training_record(request.training, result),
        "evaluation": None,
    }
    if data.split is not None:
        record["data"]["split"] = data.split.as_record()
    if refit is not None:
        record["refit_of"] = refit
    write_record(data.target, record)
    if data.split is not None and data.dataset is not None and request.beir is not None:
        lengths = request.lengths or (request.training.max_length,)  # the length it learned; longer reads cost more
        evaluation = RerankerEvalRequest(
            data.target, request.beir, request.split, backends=(settings.rerank_backend,), lengths=lengths, k=request.k
        )
        fixed = FixedSettings.from_record(refit) if refit is not None else None
        record["evaluation"] = selection_report(
            resources, data.collection, data.target, data.dataset, data.split, evaluation, fixed=fixed
        )
        write_record(data.target, record)
    return TrainingOutcome(data.target, record, (time.perf_counter() - started) / 60)


def _refit_request(request: TrainingRequest, twin_dir: Path, log: RunLog) -> tuple[TrainingRequest, dict[str, Any]]:
    """The request that retrains ``twin_dir``'s recipe on its split's ``fit`` and ``choose`` parts, and the record
    of what it refits (the twin and the settings chosen for it)."""
    if request.beir is None:
        raise ValueError("a refit is supervised: give the --beir folder its fit-only model was trained on")
    twin, training, fixed = refit_recipe(twin_dir, request.training.device)
    source, folder = str(twin["data"]["source"]), request.beir.resolve().name
    if not source.startswith(f"BEIR {folder} "):
        raise ValueError(f"{twin_dir} was trained on {source!r}, not on the BEIR folder {folder!r}")
    data, sizes = twin["data"], twin["data"]["split"]["sizes"]
    log.info(
        f"refit of {twin_dir}: its recipe ({training.loss}, {training.layers or 'all'} layers, "
        f"{data['negatives_per_query']} negatives of the top {data['depth']}) on fit + choose "
        f"({sizes['fit']} + {sizes['choose']} queries); scored with the settings chosen for it: {fixed.label}, "
        f"top {fixed.top_n}; report ({sizes['report']} queries) untouched"
    )
    refit = replace(
        request,
        training=training,
        choose=int(sizes["choose"]),
        report=int(sizes["report"]),
        lengths=(fixed.length,),
        collection=request.collection or data.get("collection"),
        negatives=int(data["negatives_per_query"]),
        depth=int(data["depth"]),
        base=request.base or twin.get("base"),  # the twin's starting encoder, unless another is asked for
    )
    return refit, {"model": str(twin_dir), "chosen": twin["evaluation"]["overall"]["chosen"],
                   **fixed.as_record()}  # fmt: skip


def _target(settings: Settings, request: TrainingRequest, collection: str) -> Path:
    target = request.out or settings.resolved_models_dir / f"reranker-{collection}"
    target.mkdir(parents=True, exist_ok=True)
    return target


def _supervised(resources: Resources, request: TrainingRequest, beir: Path, log: RunLog) -> _TrainingData:
    """Pairs from the qrels of the ``fit`` queries of BEIR folder ``beir``; ``choose`` and ``report`` are kept for
    the selection at the end."""
    dataset = load_beir(beir, request.split)
    name = request.collection or f"beir-{beir.resolve().name}"
    summary = ensure_corpus_collection(resources, name, dataset.corpus)
    log.info(describe_corpus_ingest(summary))
    if failures := describe_corpus_failures(summary):
        log.warn(failures)
    split = split_queries_three_way(
        list(dataset.queries), choose=request.choose, report=request.report, seed=request.training.seed
    )
    train_ids = [*split.fit, *(split.choose if request.refit_of is not None else ())]
    target = _target(resources.settings, request, name)
    pairs, stats = _mine_or_load(
        target,
        request.resume,
        lambda: mine_pairs(
            resources.index,
            resources.settings,
            name,
            beir_queries(dataset.queries, dataset.qrels, train_ids),
            negatives=request.negatives,
            depth=request.depth,
        ),
        log,
    )
    return _TrainingData(
        collection=name,
        target=target,
        pairs=pairs,
        stats=stats,
        source=f"BEIR {beir.resolve().name} qrels/{request.split}.tsv: {len(train_ids)} of "
        f"{len(dataset.queries)} queries" + (" (fit and choose: a refit)" if request.refit_of is not None else ""),
        dataset=dataset,
        split=split,
    )


def _synthetic(resources: Resources, request: TrainingRequest, log: RunLog) -> _TrainingData:
    """Pairs from questions the generator writes about sampled chunks; what it wrote is saved with the model."""
    if request.collection is None:
        raise ValueError("--synthetic needs --collection (an ingested collection)")
    name = request.collection
    resources.index.require_collection(name)
    target = _target(resources.settings, request, name)
    questions_file = target / SYNTHETIC_FILE
    report: dict[str, Any] = {}

    def mine() -> MinedPairs:
        mined, info = synthetic_pairs(
            resources,
            name,
            request.questions,
            filter_top_k=request.filter_top_k,
            negatives=request.negatives,
            depth=request.depth,
            seed=request.training.seed,
            per_chunk=request.per_chunk,
        )
        report.update(info)
        questions_file.write_text(json.dumps(info, indent=2, ensure_ascii=False))
        return mined

    pairs, stats = _mine_or_load(target, request.resume, mine, log)
    if not report and questions_file.is_file():
        report = json.loads(questions_file.read_text())
    source = (
        f"synthetic: {report.get('generator', '?')} wrote {report.get('generated', '?')} questions for "
        f"sampled chunks of `{name}`; {report.get('kept', '?')} kept (source chunk in the hybrid top "
        f"{request.filter_top_k})"
    )
    notes = ["no held-out labels in synthetic mode: evaluate with `ragline reranker eval --beir ...`"]
    return _TrainingData(collection=name, target=target, pairs=pairs, stats=stats, source=source, notes=notes)


def _mine_or_load(
    out: Path, resume: bool, mine: Callable[[], MinedPairs], log: RunLog
) -> tuple[list[Pair], dict[str, int]]:
    """Reuse the pairs of an interrupted run (resuming must see the same data); otherwise mine and save them."""
    path = out / PAIRS_FILE
    stats_path = out / PAIRS_STATS_FILE
    if resume and path.is_file() and stats_path.is_file():
        log.info(f"reusing the training pairs in {path}")
        return load_pairs(path), json.loads(stats_path.read_text())
    mined = mine()
    save_pairs(mined.pairs, path)
    stats = {"queries": mined.queries, "skipped": mined.skipped, "positives": mined.positives}
    stats_path.write_text(json.dumps(stats))
    return mined.pairs, stats
