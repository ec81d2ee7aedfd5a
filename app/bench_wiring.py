"""Where settings meet the benchmarks: the app objects each bench in ``eval.bench`` measures, built here.

``eval`` never imports ``app``, so every bench takes its parts as arguments; this module builds them from
``Settings`` (resources, the pipeline's retrieval stages, chunkers, the memory service, rerankers) for the
``ragline bench`` commands. Errors are the builders' own (``ModelMissingError``, ``LLMUnavailableError``, ...)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.resources import Resources
from app.settings import Settings
from eval.beir import BeirDataset
from eval.bench.ingest import IngestSetup
from eval.bench.memory import Script
from eval.bench.rerank import Reranker, RerankVariant
from eval.bench.retrieval import QueryPath
from ingest.job import Chunker, IngestSummary
from memory.service import MemoryService
from retrieval.fusion import Fusion
from retrieval.index import Index
from retrieval.protocols import AnswersQuestions
from retrieval.types import Hit, QueryState, Stage, TraceEntry


class StagePath:
    """Query stages run in order on a fresh state; the trace they record is the result (a ``QueryPath``)."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def __call__(self, question: str, collection: str) -> list[TraceEntry]:
        state = QueryState(question=question, collection=collection)
        for stage in self.stages:
            state = stage(state)
        return state.trace


def stage_paths(index: Index, fusion: Fusion, k: int = 20, dedup_threshold: float = 0.95) -> dict[str, QueryPath]:
    """The retrieval paths ``bench retrieval`` times over ``index``, built from the pipeline's own stage classes.

    ``overlapped`` is the pipeline's path (``HybridSearch``: BM25 beside the query embedding, vectors prefetched
    for dedup); ``sequential`` is the former one (BM25, then embed + dense search, then dedup reading the
    BM25-only vectors from Chroma)."""
    from app.query.stages.deduplicate import Deduplicate
    from app.query.stages.fuse import Fuse
    from app.query.stages.hybrid_search import HybridSearch
    from app.query.stages.search import Search

    return {
        "overlapped": StagePath([HybridSearch(index, k, k), Fuse(fusion), Deduplicate(index, dedup_threshold)]),
        "sequential": StagePath(
            [Search(index, "bm25", k), Search(index, "dense", k), Fuse(fusion), Deduplicate(index, dedup_threshold)]
        ),
    }


@dataclass(frozen=True)
class RetrievalBenchParts:
    """A BEIR corpus ingested into ``index`` as ``collection``, with the fusion and embedder the settings choose."""

    index: Index
    collection: str
    dataset: BeirDataset
    fusion: Fusion
    embedder_model_dir: Path
    ingested: IngestSummary


def retrieval_bench_parts(settings: Settings, beir: Path, split: str) -> RetrievalBenchParts:
    """Load the BEIR folder and ingest its corpus as ``beir-<folder name>`` (unchanged documents are skipped)."""
    from app.corpus_collections import ensure_corpus_collection
    from eval.beir import load_beir
    from retrieval.fusion import make_fusion

    dataset = load_beir(beir, split)
    resources = Resources(settings)
    collection = f"beir-{beir.resolve().name}"
    ingested = ensure_corpus_collection(resources, collection, dataset.corpus)
    fusion = make_fusion(settings.fusion, rrf_k=settings.rrf_k, alpha=settings.fusion_alpha)
    return RetrievalBenchParts(resources.index, collection, dataset, fusion, resources.embedder.model_dir, ingested)


def ingest_setup(settings: Settings, *, llamaindex: bool) -> IngestSetup:
    """The fixed chunker and embedder ``ragline ingest`` uses; RAPTOR chunkers on demand; the LlamaIndex
    splitter with our chunk size in the generator's tokens when ``llamaindex``."""
    from app.chunking import make_chunker
    from app.resources import bm25_config
    from eval.bench.ingest import LlamaIndexSplitter
    from ingest.chunkers.fixed import load_token_counter

    resources = Resources(settings)

    def raptor_chunker(parallel_documents: int) -> Chunker:
        chunker = make_chunker(resources, "raptor")
        chunker.parallel_documents = parallel_documents
        return chunker

    splitter = None
    if llamaindex:
        tokenize = load_token_counter(resources.generator_dir)
        splitter = LlamaIndexSplitter(settings.chunk_size, settings.chunk_overlap, tokenize)
    return IngestSetup(
        chunker=make_chunker(resources, "fixed"),
        embedder=resources.embedder,
        embedder_model_dir=resources.embedder.model_dir,
        bm25_config=bm25_config(settings),
        batch_documents=settings.ingest_batch_documents,
        llamaindex=splitter,
        raptor_chunker=raptor_chunker,
    )


@dataclass(frozen=True)
class MemoryBenchParts:
    """The memory service and the pipeline under it; ``model_context_tokens`` is the generator's whole context,
    the prompt budget keep-everything gets so that nothing of its history is cut."""

    service: MemoryService
    pipeline: AnswersQuestions
    model_context_tokens: int


def memory_bench_parts(
    settings: Settings, scripts: Sequence[Script], before_sample_ingest: Callable[[], None]
) -> MemoryBenchParts:
    """The pipeline and memory service, with the sample corpus ingested first when a script asks it and it is
    missing (``before_sample_ingest`` is called then). Checks vLLM is up, so a run fails now, with the fix."""
    from app.ingestion import run_ingest
    from app.memory_wiring import build_memory_service
    from app.query.pipeline import Pipeline
    from ingest.samples import SAMPLE_COLLECTION, sample_corpus_dir

    resources = Resources(settings)
    if any(s.collection == SAMPLE_COLLECTION for s in scripts) and (
        SAMPLE_COLLECTION not in resources.index.collections()
    ):
        before_sample_ingest()
        run_ingest(settings, sample_corpus_dir(), SAMPLE_COLLECTION, prune=False, meta={}, chunker="fixed")
    pipeline = Pipeline(resources)
    service = build_memory_service(resources, pipeline)
    resources.generator.served_models()
    return MemoryBenchParts(service, pipeline, settings.vllm_max_model_len)


class HybridCandidates:
    """Each question's hybrid list fetched once, with its gold judgements: what every reranker is measured on
    (a ``RerankMeasures``)."""

    def __init__(
        self, lists: Mapping[str, list[Hit]], queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]]
    ) -> None:
        self.lists, self.queries, self.qrels = lists, queries, qrels

    def ndcg_at_10(self, rerankers: Mapping[str, Reranker], top_n: int, weight: float) -> dict[str, float]:
        from eval.rerank_quality import compare

        scores = compare(
            self.lists, self.queries, self.qrels, rerankers, top_n, ks=(10,), progress=False, weight=weight
        )
        return {name: metrics["ndcg@10"] for name, metrics in scores.items()}

    def latency(self, reranker: Reranker, top_n: int) -> dict[str, float]:
        from eval.rerank_quality import rerank_latency

        return rerank_latency(reranker, self.lists, self.queries, top_n)


@dataclass(frozen=True)
class RerankBenchParts:
    """Every (model, engine) variant and the candidates they are measured on."""

    variants: list[RerankVariant]
    candidates: HybridCandidates
    questions: int


def rerank_bench_parts(
    settings: Settings,
    models: Sequence[str],
    engines: Sequence[str],
    *,
    collection: str,
    dataset: Path,
    limit: int | None,
    max_length: int,
    depth: int,
) -> RerankBenchParts:
    """The questions with gold ids from ``dataset``, their hybrid lists ``depth`` deep from ``collection``, and a
    cross-encoder per model and engine. Raises ``DatasetError`` when no question has gold ids."""
    from app.reranker.evaluation_run import hybrid_lists
    from app.resources import resolve_reranker
    from eval.qa import DatasetError, load_dataset
    from retrieval.rerank import CrossEncoderReranker

    items = [item for item in load_dataset(dataset, limit).items if item.gold_ids]
    if not items:
        raise DatasetError(f"{dataset} has no question with gold document ids")
    resources = Resources(settings)
    resources.index.require_collection(collection)
    variants = [
        RerankVariant(
            Path(name).name,
            backend,
            CrossEncoderReranker(
                resolve_reranker(settings, name),
                max_length=max_length,
                batch_size=settings.rerank_batch_size,
                backend=backend,  # type: ignore[arg-type]
            ),
        )
        for name in models
        for backend in engines
    ]
    queries = {item.id: item.question for item in items}
    qrels = {item.id: dict.fromkeys(item.gold_ids, 1) for item in items}
    lists = hybrid_lists(resources.index, settings, collection, queries, depth, progress=False)
    return RerankBenchParts(variants, HybridCandidates(lists, queries, qrels), len(items))


LLM_MODES = ("live", "dead", "trickle")


@contextmanager
def api_under_load(
    settings: Settings, llm: str, llm_timeout_s: float | None, collection: str = "sample"
) -> Iterator[str]:
    """The API in this process on a free 127.0.0.1 port, its LLM ``live`` (as configured), ``dead`` (a closed port,
    no retries) or ``trickle`` (``FakeTricklingLLM``: a byte every half second, never an answer); yields its URL.
    Nothing is ingested: ``collection`` must exist (``UnknownCollectionError``, a ``LookupError``, otherwise)."""
    import threading
    import time

    import uvicorn

    from app.api.main import create_app
    from app.fake_llm import FakeTricklingLLM
    from app.vllm_server import free_port

    if llm not in LLM_MODES:
        raise ValueError(f"--llm must be one of {', '.join(LLM_MODES)}, got {llm!r}")
    update: dict[str, object] = {} if llm_timeout_s is None else {"llm_timeout_s": llm_timeout_s}
    if llm == "dead":
        update.update(llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_retries=0)
    with ExitStack() as stack:
        if llm == "trickle":
            fake = FakeTricklingLLM(interval_s=0.5).start()
            stack.callback(fake.stop)
            update["llm_base_url"] = fake.base_url
        resources = Resources(settings.model_copy(update=update))
        resources.index.require_collection(collection)  # fail before the clients start, with what to ingest
        server = uvicorn.Server(
            uvicorn.Config(create_app(resources), host="127.0.0.1", port=free_port(), log_level="error")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("the API did not start")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{server.config.port}"
        finally:
            server.should_exit = True
            thread.join(30)


REPLICA_LLM_MODES = ("live", "instant")


class ReplicaSetupError(RuntimeError):
    """Replicas cannot share what this configuration keeps on one machine, or one did not start."""


@contextmanager
def api_replicas(settings: Settings, count: int, llm: str, workdir: Path) -> Iterator[list[str]]:
    """``count`` ``ragline serve`` processes on free 127.0.0.1 ports, each with its own data dir (its BM25 cache)
    and all sharing the configured PostgreSQL and Chroma server; yields their base URLs.

    ``llm`` is ``live`` (the configured vLLM, which every replica shares) or ``instant`` (``FakeFlakyLLM`` with no
    failures: a named fake that answers at once, so the run measures the API tier, not the generator)."""
    from app.fake_llm import FakeFlakyLLM
    from app.vllm_server import free_port

    if llm not in REPLICA_LLM_MODES:
        raise ValueError(f"--llm must be one of {', '.join(REPLICA_LLM_MODES)}, got {llm!r}")
    if not settings.database_url or not settings.chroma_url:
        raise ReplicaSetupError(
            "API replicas share state only through PostgreSQL and a Chroma server: set RAGLINE_DATABASE_URL and "
            "RAGLINE_CHROMA_URL (docs/scale-out.md)"
        )
    with ExitStack() as stack:
        env = {**os.environ, **settings.as_env(), "RAGLINE_MODELS_DIR": str(settings.resolved_models_dir)}
        if llm == "instant":
            fake = stack.enter_context(FakeFlakyLLM(failures=0))
            fake.model = settings.generator
            env["RAGLINE_LLM_BASE_URL"] = fake.base_url
        processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        urls = []
        for number in range(count):
            port, data_dir = free_port(), workdir / f"replica-{number}"
            data_dir.mkdir(parents=True, exist_ok=True)
            log = data_dir / "serve.log"
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env={**env, "RAGLINE_DATA_DIR": str(data_dir)}, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            stack.callback(_stop, process)
            processes.append((process, log))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 300
        for (process, log), url in zip(processes, urls, strict=True):
            while True:
                if process.poll() is not None:
                    raise ReplicaSetupError(f"replica at {url} exited {process.returncode}:\n{log.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{url}/readyz", timeout=3).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ReplicaSetupError(f"replica at {url} was not ready within 300 s; see {log}")
                time.sleep(0.5)
        yield urls


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
