"""``ragline bench retrieval``: query latency per stage at growing corpus sizes, against baselines, same run.

A scale corpus is synthesised from a real one (SciFact): chunk texts are new mixes of real sentences and vectors
are real vectors with small noise, renormalised. Latency depends on corpus size, vocabulary and vector
distribution, not on the texts being meaningful, and this avoids embedding a million chunks on a laptop CPU.
Quality (nDCG@10) is measured on the real corpus only.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median

import numpy as np
from retrieval.stages import Deduplicate, Fuse, HybridSearch, Search
from tqdm import tqdm

from retrieval.fusion import Fusion
from retrieval.index import DocumentWrite, Index
from retrieval.types import Chunk, Embedder, QueryState, Stage


@dataclass
class StageTimes:
    """Milliseconds per query for each stage, in run order."""

    ms: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, value: float) -> None:
        self.ms.setdefault(stage, []).append(value)

    def summary(self) -> dict[str, dict[str, float]]:
        return {stage: percentiles(values) for stage, values in self.ms.items()}


def percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {"p50": round(median(ordered), 3), "p95": round(p95, 3), "n": len(ordered)}


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


def time_query_path(
    index: Index,
    collection: str,
    queries: Sequence[str],
    fusion: Fusion,
    k: int = 20,
    dedup_threshold: float = 0.95,
) -> dict[str, StageTimes]:
    """Time the retrieval stages the pipeline runs (no rerank, no generation), built from the same stage classes.

    ``overlapped`` is the pipeline's path (``HybridSearch``: BM25 beside the query embedding, vectors prefetched
    for dedup); ``sequential`` is the former one (BM25, then embed + dense search, then dedup reading the
    BM25-only vectors from Chroma). Both run on each query in turn, so load on the machine hits both alike."""
    paths: dict[str, list[Stage]] = {
        "overlapped": [HybridSearch(index, k, k), Fuse(fusion), Deduplicate(index, dedup_threshold)],
        "sequential": [
            Search(index, "bm25", k),
            Search(index, "dense", k),
            Fuse(fusion),
            Deduplicate(index, dedup_threshold),
        ],
    }
    times = {name: StageTimes() for name in paths}
    for query in queries:
        for name, stages in paths.items():
            state = QueryState(question=query, collection=collection)
            started = time.perf_counter()
            for stage in stages:
                state = stage(state)
            total = (time.perf_counter() - started) * 1000
            entries = {entry.stage: entry for entry in state.trace}
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


def time_callable(fn: Callable[[str], object], queries: Sequence[str]) -> dict[str, float]:
    values = []
    for query in queries:
        started = time.perf_counter()
        fn(query)
        values.append((time.perf_counter() - started) * 1000)
    return percentiles(values)
