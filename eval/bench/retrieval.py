"""``ragline bench retrieval``: query latency per stage at growing corpus sizes, against baselines, same run.

A scale corpus is synthesised from a real one (SciFact): chunk texts are new mixes of real sentences and vectors
are real vectors with small noise, renormalised. Latency depends on corpus size, vocabulary and vector
distribution, not on the texts being meaningful, and this avoids embedding a million chunks on a laptop CPU.
Quality (nDCG@10) is measured on the real corpus only.

The pipeline's own retrieval stages live in ``app``; this module never imports them: it takes each timed path as a
``QueryPath`` (built by ``app.bench_wiring``) that runs the stages on one question and returns their trace.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from eval.baselines.llamaindex_fusion import LlamaIndexFusionBaseline
from eval.beir import BeirDataset
from eval.bench.common import percentiles, speedup, time_callable
from eval.metrics import evaluate_retrieval
from retrieval.bm25 import BM25Config
from retrieval.fusion import Fusion
from retrieval.hybrid import hybrid_search
from retrieval.index import DocumentWrite, Index
from retrieval.protocols import Embedder
from retrieval.types import Chunk

EMBEDDING_ENGINES = ("torch", "onnx", "onnx-int8")


class TracedStage(Protocol):
    """One trace entry as a query stage records it: its name, milliseconds and details (``embed_ms`` ...)."""

    stage: str
    ms: float
    details: dict[str, Any]


class QueryPath(Protocol):
    """A sequence of query stages run on one question; returns the trace entries the stages recorded."""

    def __call__(self, question: str, collection: str) -> Sequence[TracedStage]: ...


QueryPaths = Callable[[Index], Mapping[str, QueryPath]]
"""Builds the timed paths over an index: ``overlapped`` (the pipeline's) and ``sequential`` (the former one)."""


@dataclass
class StageTimes:
    """Milliseconds per query for each stage, in run order."""

    ms: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, value: float) -> None:
        self.ms.setdefault(stage, []).append(value)

    def summary(self) -> dict[str, dict[str, float]]:
        return {stage: percentiles(values) for stage, values in self.ms.items()}


def synthesize(
    texts: Sequence[str], vectors: np.ndarray, size: int, seed: int = 0, noise: float = 0.05
) -> tuple[list[str], np.ndarray]:
    """``size`` chunk texts built from random real sentences, and jittered copies of real vectors."""
    rng = random.Random(seed)
    sentences = [s.strip() for text in texts for s in text.split(". ") if len(s.split()) > 3]
    out_texts = [". ".join(rng.choices(sentences, k=rng.randint(3, 8))) for _ in range(size)]
    generator = np.random.default_rng(seed)
    base = vectors[generator.integers(0, len(vectors), size)]
    jittered = base + generator.normal(0.0, noise, base.shape).astype(np.float32)
    jittered /= np.linalg.norm(jittered, axis=1, keepdims=True)
    return out_texts, jittered.astype(np.float32)


def build_scale_collection(
    index: Index, collection: str, texts: list[str], vectors: np.ndarray, batch: int = 5000, progress: bool = True
) -> None:
    """Write pre-embedded synthetic chunks (one document per chunk) through the normal write path."""
    for start in tqdm(range(0, len(texts), batch), desc=f"build {collection}", disable=not progress):
        documents = [
            DocumentWrite(f"s{i}", f"s{i}", [Chunk(id=f"s{i}", doc_id=f"s{i}", text=texts[i], metadata={"n": i})])
            for i in range(start, min(start + batch, len(texts)))
        ]
        index.write(collection, documents, vectors[start : start + batch])
    index.commit(collection)


def time_query_path(paths: Mapping[str, QueryPath], collection: str, queries: Sequence[str]) -> dict[str, StageTimes]:
    """Time each path's stages (no rerank, no generation) on every query.

    ``overlapped`` is the pipeline's path (BM25 beside the query embedding, vectors prefetched for dedup) and
    records ``embed_query``, ``dense_search`` and ``search`` (both searches together); any other path records its
    ``dense`` stage whole. All paths run on each query in turn, so load on the machine hits them alike."""
    times = {name: StageTimes() for name in paths}
    for query in queries:
        for name, path in paths.items():
            started = time.perf_counter()
            trace = path(query, collection)
            total = (time.perf_counter() - started) * 1000
            entries = {entry.stage: entry for entry in trace}
            record = times[name]
            record.add("bm25", entries["bm25"].ms)
            if name == "overlapped":
                record.add("embed_query", entries["dense"].details["embed_ms"])
                record.add("dense_search", entries["dense"].details["search_ms"])
                record.add("search", total - entries["fusion"].ms - entries["dedup"].ms)
            else:
                record.add("dense", entries["dense"].ms)
            record.add("fusion", entries["fusion"].ms)
            record.add("dedup", entries["dedup"].ms)
            record.add("total", total)
    return times


def time_query_embedding(embedders: Mapping[str, Embedder], queries: Sequence[str]) -> dict[str, dict[str, float]]:
    """p50/p95 ms of one query's embedding per engine, each query through every engine in turn."""
    values: dict[str, list[float]] = {name: [] for name in embedders}
    for query in queries:
        for name, embedder in embedders.items():
            started = time.perf_counter()
            embedder.embed([query])
            values[name].append((time.perf_counter() - started) * 1000)
    return {name: percentiles(ms) for name, ms in values.items()}


@dataclass(frozen=True)
class RetrievalBenchConfig:
    """What to measure: the flags of ``ragline bench retrieval``."""

    sizes: Sequence[int]
    queries: int = 100
    baseline_queries: int = 20
    baseline_max_size: int = 100_000
    quality_queries: int | None = None
    keep: bool = False


@dataclass(frozen=True)
class ScaleBaselines:
    """rank-bm25 and LlamaIndex's fusion retriever on one synthetic corpus: latency and build seconds."""

    rank_bm25_ms: dict[str, float]
    rank_bm25_build_s: float
    llamaindex_ms: dict[str, float]
    llamaindex_build_s: float


@dataclass(frozen=True)
class ScaleRun:
    """One synthetic corpus size: our stage latencies (overlapped and sequential) and, up to the baseline
    maximum size, the baselines; ``build_s`` is None when the collection was reused from an earlier run."""

    size: int
    ours: dict[str, dict[str, float]]
    sequential: dict[str, dict[str, float]]
    build_s: float | None
    baselines: ScaleBaselines | None
    baseline_max_size: int

    @property
    def overlap_speedup(self) -> float:
        return speedup(self.sequential["total"]["p50"], self.ours["total"]["p50"])

    @property
    def bm25_speedup_vs_rank_bm25(self) -> float:
        """rank-bm25's scoring time over our BM25 stage's (0.0 when the baselines were skipped)."""
        return speedup(self.baselines.rank_bm25_ms["p50"], self.ours["bm25"]["p50"]) if self.baselines else 0.0

    @property
    def speedup_vs_llamaindex(self) -> float:
        """LlamaIndex's fusion retrieval time over our whole path's (0.0 when the baselines were skipped)."""
        return speedup(self.baselines.llamaindex_ms["p50"], self.ours["total"]["p50"]) if self.baselines else 0.0

    def as_report(self) -> dict[str, object]:
        entry: dict[str, object] = {
            "ours_ms": self.ours,
            "ours_sequential_ms": self.sequential,
            "overlap_speedup": round(self.overlap_speedup, 2),
            "build_s": round(self.build_s, 1) if self.build_s is not None else None,
        }
        if self.baselines is None:
            entry["baselines_skipped"] = f"size {self.size} > --baseline-max-size {self.baseline_max_size}"
            return entry
        entry.update(
            rank_bm25_ms=self.baselines.rank_bm25_ms,
            rank_bm25_build_s=round(self.baselines.rank_bm25_build_s, 1),
            bm25_speedup_vs_rank_bm25=round(self.bm25_speedup_vs_rank_bm25, 1),
            llamaindex_fusion_ms=self.baselines.llamaindex_ms,
            llamaindex_build_s=round(self.baselines.llamaindex_build_s, 1),
            speedup_vs_llamaindex=round(self.speedup_vs_llamaindex, 2),
        )
        return entry


@dataclass(frozen=True)
class RetrievalBenchResult:
    """Everything ``ragline bench retrieval`` measured; ``as_report`` is the results file's content."""

    corpus: str
    split: str
    fusion: dict[str, object]
    embedder_backend: str
    config: RetrievalBenchConfig
    embed_query_ms_by_backend: dict[str, dict[str, float]]
    ndcg_at_10: dict[str, float]
    real_corpus_latency_ms: dict[str, dict[str, float]]
    quality_queries: int
    reference_build_s: float
    scale_runs: list[ScaleRun]

    def as_report(self) -> dict[str, object]:
        return {
            "corpus": self.corpus,
            "split": self.split,
            "fusion": self.fusion,
            "embedder_backend": self.embedder_backend,
            "sizes": {str(run.size): run.as_report() for run in self.scale_runs},
            "embed_query_ms_by_backend": self.embed_query_ms_by_backend,
            "ndcg@10": self.ndcg_at_10,
            "real_corpus_latency_ms": self.real_corpus_latency_ms,
        }


@dataclass(frozen=True)
class RealCorpus:
    """The real corpus as indexed: its chunks, their stored vectors, and the collection they live in."""

    index: Index
    collection: str
    dataset: BeirDataset
    chunks: list[Chunk]
    vectors: np.ndarray


def _hybrid_doc_ids(index: Index, collection: str, query: str, fusion: Fusion, k: int) -> list[str]:
    """Document ids of BM25 and dense top-``k`` fused, best first (no dedup, as the quality rows always were)."""
    hits = hybrid_search(index, collection, query, bm25_k=k, dense_k=k, fusion=fusion, prefetch_vectors=False)
    return [hit.chunk.doc_id for hit in hits.fused]


def _real_corpus_quality(
    real: RealCorpus,
    fusion: Fusion,
    embedder_model_dir: Path,
    scale_dir: Path,
    quality_items: Sequence[tuple[str, str]],
) -> tuple[dict[str, float], dict[str, dict[str, float]], float]:
    """nDCG@10 and latency of ours (hybrid), rank-bm25 (same tokens) and LlamaIndex's fusion retriever on the
    real corpus; also rank-bm25's index build seconds."""
    from rank_bm25 import BM25Okapi

    from retrieval.tokenize import Tokenizer

    chunks, config = real.chunks, real.index.bm25_config
    tokenize = Tokenizer(config.tokenizer)
    started = time.perf_counter()
    reference = BM25Okapi([tokenize(c.text) for c in chunks], k1=config.k1, b=config.b)
    reference_build_s = time.perf_counter() - started

    def rank_bm25_docs(query: str, k: int = 100) -> list[str]:
        scores = reference.get_scores(tokenize(query))
        top = np.argsort(-scores)[:k]
        return [chunks[i].doc_id for i in top if scores[i] > 0]

    llama = LlamaIndexFusionBaseline(embedder_model_dir, scale_dir / "llamaindex-real", top_k=100)
    llama.build([c.id for c in chunks], [c.text for c in chunks], real.vectors.tolist())
    doc_of = {c.id: c.doc_id for c in chunks}
    retrievers: dict[str, Callable[[str], list[str]]] = {
        "ours_hybrid": lambda query: _hybrid_doc_ids(real.index, real.collection, query, fusion, 100),
        "rank_bm25": rank_bm25_docs,
        "llamaindex_fusion": lambda query: [doc_of[node_id] for node_id, _ in llama.retrieve(query, 100)],
    }
    quality: dict[str, float] = {}
    latency: dict[str, dict[str, float]] = {}
    for label, retrieve in retrievers.items():
        run, ms = {}, []
        for qid, text in quality_items:
            started = time.perf_counter()
            run[qid] = retrieve(text)
            ms.append((time.perf_counter() - started) * 1000)
        quality[label] = evaluate_retrieval(run, {q: real.dataset.qrels[q] for q in run}, (10,))["ndcg@10"]
        latency[label] = percentiles(ms)
    return quality, latency, reference_build_s


def _time_rank_bm25(
    texts: Sequence[str], bm25_config: BM25Config, queries: Sequence[str]
) -> tuple[dict[str, float], float]:
    """rank-bm25 over ``texts`` with our tokens: its scoring latency on ``queries`` and its build seconds (the
    index is freed on return, before the next baseline is built)."""
    from rank_bm25 import BM25Okapi

    from retrieval.tokenize import Tokenizer

    tokenize = Tokenizer(bm25_config.tokenizer)
    started = time.perf_counter()
    reference = BM25Okapi([tokenize(t) for t in texts], k1=bm25_config.k1)
    build_s = time.perf_counter() - started
    return time_callable(lambda q: reference.get_scores(tokenize(q)), queries), build_s


def _scale_baselines(
    texts: list[str], vectors: np.ndarray, bm25_config: BM25Config, embedder_model_dir: Path, scale_dir: Path,
    queries: Sequence[str], baseline_queries: Sequence[str],
) -> ScaleBaselines:  # fmt: skip
    """rank-bm25 (scoring only) and LlamaIndex's fusion retriever built over one synthetic corpus and timed."""
    reference_ms, reference_build_s = _time_rank_bm25(texts, bm25_config, baseline_queries)
    llama = LlamaIndexFusionBaseline(embedder_model_dir, scale_dir / f"llamaindex-{len(texts)}", 20)
    started = time.perf_counter()
    llama.build([f"s{i}" for i in range(len(texts))], texts, vectors.tolist())
    llama_build_s = time.perf_counter() - started
    llama_ms = time_callable(lambda q: llama.retrieve(q, 20), queries)
    return ScaleBaselines(reference_ms, reference_build_s, llama_ms, llama_build_s)


def _scale_run(
    real: RealCorpus, size: int, query_paths: QueryPaths, embedder_model_dir: Path, scale_dir: Path,
    query_texts: Sequence[str], config: RetrievalBenchConfig,
) -> ScaleRun:  # fmt: skip
    """One synthetic size: built (or reused) through our write path, our paths timed, then the baselines."""
    texts, vectors = synthesize([c.text for c in real.chunks], real.vectors, size)
    scale_index = Index(scale_dir, real.index.embedder, bm25_config=real.index.bm25_config)
    collection = f"scale-{size}"
    started, built = time.perf_counter(), False
    if scale_index.counts(collection).chunks != size:
        build_scale_collection(scale_index, collection, texts, vectors)
        built = True
    build_s = time.perf_counter() - started
    timed = query_texts[: config.queries]
    scale_index.search_bm25(collection, "warm up", 5)  # load the index once, as a server would
    paths = time_query_path(query_paths(scale_index), collection, timed)
    baselines = None
    if size <= config.baseline_max_size:
        baseline_queries = query_texts[: config.baseline_queries]
        baselines = _scale_baselines(
            texts, vectors, real.index.bm25_config, embedder_model_dir, scale_dir, timed, baseline_queries
        )
    if not config.keep:
        shutil.rmtree(scale_dir / f"llamaindex-{size}", ignore_errors=True)
    return ScaleRun(
        size,
        paths["overlapped"].summary(),
        paths["sequential"].summary(),
        build_s if built else None,
        baselines,
        config.baseline_max_size,
    )


def bench_retrieval(
    index: Index,
    collection: str,
    dataset: BeirDataset,
    *,
    fusion: Fusion,
    embedder_model_dir: Path,
    embedder_backend: str,
    query_paths: QueryPaths,
    scale_dir: Path,
    config: RetrievalBenchConfig,
    corpus: str,
    on_phase: Callable[[str], None] = lambda phase: None,
) -> RetrievalBenchResult:
    """Per-stage latency p50/p95 at each synthetic size against baselines in the same run; nDCG@10 and latency
    of ours, rank-bm25 and LlamaIndex on the real corpus (``collection`` in ``index``, already ingested).

    The query embedding is also timed per engine (torch, onnx, onnx-int8) on the same queries. Synthetic
    collections go to ``scale_dir``, kept for a later run only with ``config.keep``; ``on_phase`` hears the name
    of each long phase as it starts."""
    from retrieval.embedder import SentenceTransformerEmbedder

    query_items = list(dataset.queries.items())
    query_texts = [text for _, text in query_items]
    quality_items = query_items[: config.quality_queries] if config.quality_queries else query_items
    engines = {
        backend: SentenceTransformerEmbedder(embedder_model_dir, query_backend=backend) for backend in EMBEDDING_ENGINES
    }
    for engine in engines.values():
        engine.embed(["warm up"])
    embed_ms = time_query_embedding(engines, query_texts[: config.queries])
    del engines

    chunks = index.manifest.chunks(collection)
    real = RealCorpus(index, collection, dataset, chunks, index.vectors.vectors(collection, [c.id for c in chunks]))
    for stale in scale_dir.glob("llamaindex-*"):  # baselines are rebuilt each run; our scale collections reused
        shutil.rmtree(stale, ignore_errors=True)
    on_phase("quality on the real corpus")
    quality, real_latency, reference_build_s = _real_corpus_quality(
        real, fusion, embedder_model_dir, scale_dir, quality_items
    )
    scale_runs = [
        _scale_run(real, size, query_paths, embedder_model_dir, scale_dir, query_texts, config) for size in config.sizes
    ]
    if not config.keep:
        shutil.rmtree(scale_dir, ignore_errors=True)
    return RetrievalBenchResult(
        corpus=corpus,
        split=dataset.split,
        fusion=fusion.describe(),
        embedder_backend=embedder_backend,
        config=config,
        embed_query_ms_by_backend=embed_ms,
        ndcg_at_10=quality,
        real_corpus_latency_ms=real_latency,
        quality_queries=len(quality_items),
        reference_build_s=reference_build_s,
        scale_runs=scale_runs,
    )
