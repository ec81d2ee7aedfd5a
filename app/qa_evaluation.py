"""``ragline eval qa`` as library calls: start, resume or re-report a QA run over the whole pipeline.

``eval.qa`` answers and scores questions given any ``retrieval.protocols.AnswersQuestions``; this module supplies
the app side: the configs (TOML files of ``Settings`` overrides, presets), the collection (ingested from a corpus if
asked), the ``Pipeline``, and the RAGAS judge with the local embedder. A run's options are written to ``run.json``
before the first question, so ``resume_qa_run`` continues with exactly the options the run started with.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.corpus_collections import (
    describe_corpus_failures,
    describe_corpus_ingest,
    ensure_corpus_collection,
    ingest_files,
)
from app.model_registry import MODELS
from app.profiles import PROFILES
from app.query.pipeline import Pipeline
from app.resources import Resources, served_model_name
from app.run_log import RunLog
from app.settings import Settings
from eval.beir import load_corpus
from eval.presets import build_preset
from eval.qa import Judge, LoadedDataset, QAItem, RunStore, load_dataset, run_config
from eval.qa_summary import RunReport, finish_run

__all__ = [
    "JudgeOptions",
    "QARunRequest",
    "load_config_file",
    "rebuild_qa_report",
    "resume_qa_run",
    "start_qa_run",
]

PLACEHOLDER_KEY = "x"
"""The API key a local vLLM accepts; any other key is a secret and is not written to ``run.json``."""


@dataclass(frozen=True)
class JudgeOptions:
    """The RAGAS judge: an OpenAI-compatible endpoint (``None``: the generator's URL and served model)."""

    base_url: str | None = None
    model: str | None = None
    api_key: str = PLACEHOLDER_KEY
    max_tokens: int = 1024
    strictness: int = 1


@dataclass(frozen=True)
class QARunRequest:
    """A new run: the question set, the collection to answer from (or the corpus to fill it from), the configs
    (TOML files and/or a preset; none means the effective settings) and how to score. ``judge`` ``None`` runs
    without RAGAS; ``ragas_limit`` judges only the first N questions; ``run_id`` ``None`` is ``qa-<timestamp>``."""

    dataset: Path
    collection: str | None = None
    corpus: Path | None = None
    config_files: Sequence[Path] = field(default_factory=list)
    preset: str | None = None
    profiles: Sequence[str] = field(default_factory=list)
    reranker: str | None = None
    limit: int | None = None
    workers: int = 4
    k: int = 5
    judge: JudgeOptions | None = field(default_factory=JudgeOptions)
    ragas_limit: int | None = None
    chunker: str = "fixed"
    run_id: str | None = None


def load_config_file(path: Path) -> dict[str, Any]:
    """A config TOML: a flat table of ``Settings`` field overrides. Unknown names fail here, before any question
    runs; the values themselves are validated by the pipeline against the full ``Settings`` model."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config {path} is not valid TOML: {exc}") from None
    nested = [key for key, value in values.items() if isinstance(value, dict)]
    if nested:
        raise ValueError(f"config {path}: tables are not settings ({', '.join(nested)}); use top-level keys")
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"config {path}: unknown setting(s) {', '.join(unknown)}")
    return values


def start_qa_run(settings: Settings, request: QARunRequest, log: RunLog) -> RunReport:
    """Answer and score every question for every config, storing results as they arrive; write the report.

    Raises ``ValueError`` (bad dataset, config, preset, or a run id already used), ``FileNotFoundError`` (missing
    collection, corpus or model), ``LLMUnavailableError`` and ``JudgeUnavailableError`` before any question runs.
    """
    loaded = _load_items(request.dataset, request.limit, log)
    resources = Resources(settings)
    name = request.collection or f"qa-{request.corpus.name.split('.')[0]}"  # type: ignore[union-attr]
    if request.corpus is not None:
        _ingest_corpus(resources, request.corpus, name, request.chunker, log)
    _check_ready(resources, name)
    pipeline = Pipeline(resources)
    configs, skipped = _configs(settings, request.config_files, request.preset, request.reranker, request.profiles)
    for options in configs.values():
        pipeline.settings_for(options["options"])
    judge = _judge_settings(settings, request.judge)
    store = RunStore(settings.reports_dir / (request.run_id or time.strftime("qa-%Y%m%d-%H%M%S")))
    if store.manifest_path.exists():
        raise ValueError(f"run {store.run_id} exists already: pick another --run-id or --resume {store.run_id}")
    manifest = {
        "run_id": store.run_id,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "dataset": str(request.dataset.resolve()),
        "questions": len(loaded.items),
        "limit": request.limit,
        "collection": name,
        "corpus": str(request.corpus.resolve()) if request.corpus else None,
        "generator": settings.generator,
        "llm_base_url": settings.llm_base_url,
        "k": request.k,
        "configs": configs,
        "skipped": skipped,
        "row_errors": [{"line": error.line, "reason": error.reason} for error in loaded.errors],
        "judge": judge,
        "ragas_limit": request.ragas_limit,
    }
    store.write_manifest({**manifest, "judge": _public_judge(judge)})
    judge_key = request.judge.api_key if request.judge else PLACEHOLDER_KEY
    return _run(store, manifest, pipeline, resources, loaded.items, request.workers, judge_key, log)


def resume_qa_run(settings: Settings, run_id: str, *, workers: int, judge_key: str, log: RunLog) -> RunReport:
    """Finish run ``run_id`` with the options in its ``run.json``: the questions answered without error are kept,
    the others run (again). ``judge_key`` stands in for a judge key that was not stored. Raises as ``start_qa_run``.
    """
    store = RunStore(settings.reports_dir / run_id)
    manifest = store.manifest()
    log.info(f"resuming {run_id}: {len(store.done())} results already stored; run options come from run.json")
    items = _load_items(Path(manifest["dataset"]), manifest["limit"], log).items
    resources = Resources(settings)
    _check_ready(resources, manifest["collection"])
    return _run(store, manifest, Pipeline(resources), resources, items, workers, judge_key, log)


def rebuild_qa_report(settings: Settings, run_id: str) -> RunReport:
    """Write run ``run_id``'s report again from its stored results; runs nothing. ``FileNotFoundError`` when the
    folder holds no QA run."""
    store = RunStore(settings.reports_dir / run_id)
    store.manifest()
    return finish_run(store)


def _load_items(dataset: Path, limit: int | None, log: RunLog) -> LoadedDataset:
    """The question set; each malformed row is skipped and said in ``log`` with its line."""
    loaded = load_dataset(dataset, limit)
    for error in loaded.errors:
        log.warn(f"skipped {dataset}:{error.line}: {error.reason}")
    return loaded


def _ingest_corpus(resources: Resources, corpus: Path, collection: str, chunker: str, log: RunLog) -> None:
    """A ``.jsonl[.gz]`` corpus is BEIR-style records (``_id``, ``title``, ``text``; doc ids are the ``_id``s);
    anything else is a file or folder of documents, ingested as ``ragline ingest`` does."""
    if corpus.name.endswith((".jsonl", ".jsonl.gz")):
        summary = ensure_corpus_collection(resources, collection, load_corpus(corpus), chunker)
        log.info(describe_corpus_ingest(summary))
        if failures := describe_corpus_failures(summary):
            log.warn(failures)
        return
    summary = ingest_files(resources, corpus, collection, chunker)
    log.info(f"{collection}: {len(summary.added) + len(summary.updated)} indexed, {len(summary.skipped)} unchanged")
    for doc_id, reason in summary.failed.items():
        log.warn(f"  not ingested: {doc_id}: {reason}")


def _check_ready(resources: Resources, collection: str) -> None:
    """Fail before the first question when the collection is missing or the generator does not answer."""
    resources.index.require_collection(collection)
    resources.generator.served_models()


def _configs(
    settings: Settings,
    config_files: Sequence[Path],
    preset: str | None,
    reranker: str | None,
    profiles: Sequence[str] = (),
) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
    """The run's configs by name (the preset's, one per profile, then one per file, named by its stem) and the
    preset's skipped steps; the effective settings alone when none is given."""
    configs: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, str]] = []
    if preset:
        built = build_preset(
            preset,
            type(settings).model_fields,
            reranker or settings.reranker,
            settings.resolved_models_dir,
            MODELS.keys(),
        )
        configs.update({c.name: {"options": c.options, "note": c.note} for c in built.configs})
        skipped = [{"name": s.name, "reason": s.reason} for s in built.skipped]
    for profile in profiles:
        configs[f"profile-{profile}"] = {"options": {"profile": profile}, "note": PROFILES[profile].purpose}
    for path in config_files:
        name = path.stem
        while name in configs:
            name += "'"
        configs[name] = {"options": load_config_file(path), "note": str(path)}
    if not configs:
        configs["default"] = {"options": {}, "note": "the effective settings"}
    return configs, skipped


def _judge_settings(settings: Settings, options: JudgeOptions | None) -> dict[str, Any] | None:
    """The judge as ``run.json`` records it, defaults resolved against ``settings``; ``None`` without RAGAS."""
    if options is None:
        return None
    return {
        "base_url": options.base_url or settings.llm_base_url,
        "model": options.model or served_model_name(settings),
        "max_tokens": options.max_tokens,
        "strictness": options.strictness,
        "api_key": options.api_key,
    }


def _public_judge(judge: dict[str, Any] | None) -> dict[str, Any] | None:
    """The judge settings as stored in run.json: a key other than the placeholder is not written to disk."""
    if judge is None:
        return None
    stored = judge.get("api_key") if judge.get("api_key") in (None, PLACEHOLDER_KEY) else None
    return {**judge, "api_key": stored}


def _build_judge(info: dict[str, Any] | None, judge_key: str, resources: Resources) -> Judge | None:
    """The RAGAS judge of ``run.json``'s ``judge`` entry, checked to answer now; ``None`` when the run has none."""
    if not info:
        return None
    from eval.ragas_judge import JudgeConfig, RagasJudge

    config = JudgeConfig(
        base_url=info["base_url"],
        model=info["model"],
        api_key=info.get("api_key") or judge_key,
        max_tokens=info["max_tokens"],
        strictness=info["strictness"],
    )
    ragas_judge = RagasJudge(config, resources.embedder)
    ragas_judge.check()

    def judge(item: QAItem, answer: str, contexts: list[str]) -> dict[str, dict[str, Any]]:
        return ragas_judge.score(item.question, answer, contexts, item.reference)

    return judge


def _run(
    store: RunStore,
    manifest: dict[str, Any],
    pipeline: Pipeline,
    resources: Resources,
    items: list[QAItem],
    workers: int,
    judge_key: str,
    log: RunLog,
) -> RunReport:
    """Answer what ``store`` lacks for every config of ``manifest``, then write the report."""
    for item in manifest["skipped"]:
        log.warn(f"config {item['name']} skipped: {item['reason']}")
    judge = _build_judge(manifest["judge"], judge_key, resources)
    for name, config in manifest["configs"].items():
        answered = sum(1 for c, _ in store.done() if c == name)

        def progress(record: dict[str, Any], name: str = name) -> None:
            nonlocal answered
            answered += 1
            state = f"error: {record['error']}" if record.get("error") else f"{record['wall_ms']:.0f} ms"
            log.info(f"[{name} {answered}/{len(items)}] {record['id']}: {state}")

        started = time.perf_counter()
        ran = run_config(
            pipeline, items, manifest["collection"], name, config["options"], store,
            k=manifest["k"], workers=workers, judge=judge, judge_limit=manifest.get("ragas_limit"), progress=progress,
        )  # fmt: skip
        if ran:
            log.info(f"{name}: {ran} questions in {time.perf_counter() - started:.0f} s")
    return finish_run(store)
