"""The app objects the context experiments of ``eval.experiments`` measure, built from settings: resources for a
vLLM at a given URL, the NQ and sample collections ingested, the positioning stages by name, a pipeline whose
generations are stored, the HyDE stage as a query writer, the host's speed calibration.

``eval`` never imports ``app``; this module is where the two meet, and ``ragline eval <experiment>`` calls it,
then the experiment, then prints.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eval.experiments.answer_cache import AnswerCache, CachedGenerator
from eval.experiments.common import ANSWER_TOKENS, Progress, no_progress, read_question_rows
from eval.experiments.compression import SpeedSamples, measure_speeds
from eval.experiments.hyde import HybridConfig, QuerySet, QueryWriter
from eval.experiments.injection import Ask, InjectionItem
from eval.experiments.nq import NQ_COLLECTION, NQQuestion, Passage
from eval.experiments.position import PositionModels

if TYPE_CHECKING:
    from app.context.calibration import Calibration
    from app.llm import Completion
    from app.query.pipeline import Pipeline
    from app.resources import Resources
    from ingest.job import IngestSummary

DATASETS = Path(__file__).resolve().parent.parent / "eval" / "datasets"
SAMPLE_QA = DATASETS / "sample_qa.jsonl"
SAMPLE_OFFTOPIC = DATASETS / "sample_offtopic.jsonl"
ANSWER_TAG = f"answer-tokens={ANSWER_TOKENS}"


class LLMNotReadyError(RuntimeError):
    """No vLLM answers at the configured (or given) URL; the message says how to start one."""


def experiment_resources(llm_url: str | None) -> Resources:
    """Resources whose generator is the vLLM at ``llm_url`` (default: the configured one), checked to answer now,
    so an experiment fails before it ingests or scores anything."""
    from app.resources import Resources
    from app.settings import get_settings
    from app.vllm_server import is_ready

    settings = get_settings()
    if llm_url:
        settings = settings.model_copy(update={"llm_base_url": llm_url})
    if not is_ready(settings.llm_base_url):
        raise LLMNotReadyError(
            f"no vLLM answers at {settings.llm_base_url}: start one with `ragline llm serve` or give --llm-url"
        )
    return Resources(settings)


def offline_resources() -> Resources:
    """Resources from the configured settings, for experiments that ask no language model."""
    from app.resources import Resources
    from app.settings import get_settings

    return Resources(get_settings())


def ensure_nq_collection(resources: Resources, passages: dict[str, Passage]) -> IngestSummary:
    """The passages in the ``nq-open-oracle`` collection with their id as ``passage`` metadata (what lets the
    abstention experiment withhold a question's gold passage with a filter); incremental: a second run embeds
    nothing."""
    from app.chunking import make_chunker
    from ingest.document import Document
    from ingest.job import ingest_documents

    documents = (Document(p.id, f"{p.title}\n{p.text}", {"title": p.title, "passage": p.id}) for p in passages.values())
    return ingest_documents(
        resources.index,
        make_chunker(resources, "fixed"),
        documents,
        NQ_COLLECTION,
        total=len(passages),
        batch_documents=resources.settings.ingest_batch_documents,
    )


def ensure_sample_collection(resources: Resources) -> IngestSummary:
    """The bundled sample corpus in the ``sample`` collection (incremental: unchanged files are not re-embedded)."""
    from app.chunking import make_chunker
    from ingest.job import ingest_path
    from ingest.samples import SAMPLE_COLLECTION, sample_corpus_dir

    return ingest_path(
        resources.index,
        make_chunker(resources, "fixed"),
        sample_corpus_dir(),
        SAMPLE_COLLECTION,
        max_file_mb=resources.settings.max_file_mb,
        batch_documents=resources.settings.ingest_batch_documents,
        progress=False,
    )


def ingested_line(summary: IngestSummary) -> str:
    """One line on what an incremental ingestion did: ``<collection>: N indexed, M unchanged``."""
    return (
        f"{summary.collection}: {len(summary.added) + len(summary.updated)} indexed, {len(summary.skipped)} unchanged"
    )


def check_positionings(names: list[str]) -> None:
    """Refuses positioning names the position experiment cannot compare (``document`` order has no scores)."""
    from app.context.positioning import POSITIONINGS

    if unknown := [name for name in names if name not in POSITIONINGS or name == "document"]:
        raise ValueError(f"--positioning takes edge, edge-last or relevance; got {', '.join(unknown)}")


def position_models(
    resources: Resources, positionings: list[str], on_progress: Progress = no_progress
) -> PositionModels:
    """The index, the generator, the pipeline's prompt layout, the positioning orders by name, and the answers of
    earlier sweeps (``context-position-answers.jsonl``)."""
    from app.context.positioning import make_positioner
    from app.query.prompt import build_messages

    answers = AnswerCache(
        resources.settings.reports_dir / "context-position-answers.jsonl",
        resources.generator.model,
        ANSWER_TAG,
        on_progress=on_progress,
    )
    return PositionModels(
        index=resources.index,
        generator=resources.generator,
        build_prompt=build_messages,
        positioners={name: make_positioner(name) for name in positionings},
        answers=answers,
    )


def experiment_pipeline(resources: Resources) -> Pipeline:
    """The query pipeline as configured, asking the resources' generator."""
    from app.query.pipeline import Pipeline

    return Pipeline(resources)


@contextmanager
def stored_generation(
    resources: Resources, on_progress: Progress = no_progress
) -> Iterator[tuple[Pipeline, CachedGenerator[Completion]]]:
    """A pipeline whose generations are stored as they arrive (``context-pipeline-answers.jsonl``) and read back
    on a rerun; the resources' own generator is restored on exit."""
    from app.llm import Completion
    from app.query.pipeline import Pipeline

    generator = resources.generator
    cache = AnswerCache(
        resources.settings.reports_dir / "context-pipeline-answers.jsonl",
        generator.model,
        "chat",
        on_progress=on_progress,
    )
    cached = CachedGenerator(generator, cache, Completion)
    resources.generator = cached  # type: ignore[assignment]  # the Generate stage asks through the cache
    try:
        yield Pipeline(resources), cached
    finally:
        resources.generator = generator  # type: ignore[assignment]


def hybrid_config(resources: Resources) -> HybridConfig:
    """The configured fusion and per-searcher depths."""
    settings = resources.settings
    return HybridConfig(
        settings.fusion, settings.rrf_k, settings.fusion_alpha, settings.bm25_top_k, settings.dense_top_k
    )


def hyde_query_writer(resources: Resources, on_progress: Progress = no_progress) -> QueryWriter:
    """The ``hyde`` stage as a query writer, its queries stored in ``context-hyde-queries.jsonl``."""
    from app.query.stages.hyde import HYDE_PROMPT, HYDE_TOKENS, HypotheticalDocument
    from retrieval.types import QueryState

    stage = HypotheticalDocument(resources.generator)
    stored = AnswerCache(
        resources.settings.reports_dir / "context-hyde-queries.jsonl",
        resources.generator.model,
        f"hyde={HYDE_TOKENS}",
        progress="HyDE queries written",
        on_progress=on_progress,
    )
    return QueryWriter(lambda question: stage(QueryState(question=question, collection="")).query, HYDE_PROMPT, stored)


def hyde_query_sets(
    resources: Resources,
    beir: Path,
    split: str,
    limit_queries: int,
    collection: str | None,
    sample_qa: bool,
    on_progress: Progress = no_progress,
) -> list[QuerySet]:
    """The first ``limit_queries`` judged queries of a BEIR folder, its corpus ingested (as ``collection``,
    default ``beir-<folder>``), and with ``sample_qa`` the sample QA set on the ingested sample collection.
    Raises ``FileNotFoundError`` or ``ValueError`` for a bad folder or file."""
    from app.corpus_collections import describe_corpus_failures, describe_corpus_ingest, ensure_corpus_collection
    from eval.beir import load_corpus, load_qrels, load_queries
    from ingest.samples import SAMPLE_COLLECTION

    judged = load_qrels(beir / "qrels" / f"{split}.tsv")
    texts = load_queries(beir / "queries.jsonl")
    corpus_path = next((beir / n for n in ("corpus.jsonl", "corpus.jsonl.gz") if (beir / n).exists()), None)
    if corpus_path is None:
        raise FileNotFoundError(f"no corpus.jsonl[.gz] in {beir}")
    documents = load_corpus(corpus_path)
    name = collection or f"beir-{beir.resolve().name}"
    ingested = ensure_corpus_collection(resources, name, documents)
    on_progress(describe_corpus_ingest(ingested))
    if failures := describe_corpus_failures(ingested):
        on_progress(failures)
    queries = {q: (texts[q], None) for q in list(judged)[:limit_queries] if q in texts}
    sets = [QuerySet(beir.resolve().name, name, queries, judged)]
    if not sample_qa:
        return sets
    rows = [r for r in read_question_rows(SAMPLE_QA) if r.get("doc_ids")]
    on_progress(ingested_line(ensure_sample_collection(resources)))
    sets.append(
        QuerySet(
            "sample-qa",
            SAMPLE_COLLECTION,
            {r["id"]: (r["question"], r.get("filters")) for r in rows},
            {r["id"]: dict.fromkeys(r["doc_ids"], 1) for r in rows},
        )
    )
    return sets


@dataclass(frozen=True)
class HostCalibration:
    """The speeds saved for the ``auto`` compression rule, where they were saved, and the raw samples."""

    calibration: Calibration
    path: Path
    samples: SpeedSamples


def calibrate_host(
    resources: Resources,
    questions: list[NQQuestion],
    passages: dict[str, Passage],
    repeats: int,
    on_progress: Progress = no_progress,
) -> HostCalibration:
    """Measures vLLM prefill and ``auto`` compression speed (``eval.experiments.compression.measure_speeds``) and
    saves them as ``<data_dir>/calibration.json``. Raises ``CompressionUnavailableError`` when the compressor
    cannot run and ``CalibrationError`` when the prefill samples give no rate."""
    from app.context.calibration import Calibration, calibration_path, prefill_rate, save_calibration
    from app.context.compression import EvidenceCompressor, timed_compress
    from app.query.build import AUTO_METHOD, compression_model_dir
    from app.query.prompt import SYSTEM_PROMPT
    from app.token_counter import ChatTemplateTokenCounter

    settings = resources.settings
    compressor = EvidenceCompressor(
        AUTO_METHOD, compression_model_dir(settings, AUTO_METHOD), settings.compression_rate
    )
    samples = measure_speeds(
        resources.generator,
        SYSTEM_PROMPT,
        ChatTemplateTokenCounter(resources.generator_dir).count,
        lambda text, question: timed_compress(compressor, text, question)[1],
        questions,
        passages,
        repeats,
        on_progress,
    )
    calibration = Calibration(
        prefill_tokens_per_s=round(prefill_rate(samples.prefill), 1),
        compression_tokens_per_s=round(samples.compression_tokens_per_s, 1),
        generator=resources.generator.model,
        compression_model=settings.compression_model,
        method=AUTO_METHOD,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    return HostCalibration(calibration, save_calibration(calibration, calibration_path(settings.data_dir)), samples)


INJECTION_COLLECTION = "injection-eval"
INJECTION_ANSWER_TOKENS = 96
"""The facts are a phrase; a short answer limit keeps the three askings of 48 items to minutes on a CPU."""


def ensure_injection_collection(resources: Resources, items: list[InjectionItem]) -> list[IngestSummary]:
    """Each item's document twice (injected and clean, ``kind: item``) and the sample corpus as distractors
    (``kind: distractor``) in one collection; incremental, so a second run embeds nothing."""
    from app.chunking import make_chunker
    from ingest.document import Document
    from ingest.job import ingest_documents, ingest_path
    from ingest.samples import sample_corpus_dir

    chunker = make_chunker(resources, "fixed")
    documents = [
        Document(item.doc_id(injected), text, {"title": item.title, "kind": "item", "item": item.id})
        for item in items
        for injected, text in ((True, item.injected), (False, item.clean))
    ]
    batch = resources.settings.ingest_batch_documents
    return [
        ingest_documents(resources.index, chunker, documents, INJECTION_COLLECTION, batch_documents=batch),
        ingest_path(
            resources.index,
            chunker,
            sample_corpus_dir(),
            INJECTION_COLLECTION,
            extra_metadata={"kind": "distractor"},
            max_file_mb=resources.settings.max_file_mb,
            batch_documents=batch,
            progress=False,
        ),
    ]


def injection_asker(pipeline: Pipeline) -> Ask:
    """Ask an item's question over its own document (injected or clean) and the distractors; the defence is on for
    ``clean`` and ``defended`` (the default pipeline) and off for ``attacked``."""

    def ask(item: InjectionItem, variant: str) -> str:
        where = {"$or": [{"doc_id": item.doc_id(variant != "clean")}, {"kind": "distractor"}]}
        options = {"injection_screen": variant != "attacked", "max_answer_tokens": INJECTION_ANSWER_TOKENS}
        return pipeline.run(item.question, INJECTION_COLLECTION, where, options=options).text

    return ask
