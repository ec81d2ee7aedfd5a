"""Hybrid search, the one implementation: BM25 ∥ dense → fusion → de-duplication.

The query pipeline's stages (``HybridSearch``, ``Fuse``, ``Deduplicate`` in ``app.query.stages``) each run one step
of this module over the query state; ``hybrid_search`` runs all three for callers without a query state (reranker
mining, retrieval benchmarks, experiments). Both paths share these functions, so candidates and trace entries
(``bm25``, ``dense``, ``fusion``, ``dedup`` and their details) are the same wherever hybrid search runs.

Why BM25 runs beside the dense search: the query embedding (onnxruntime or torch, one thread) and Chroma's search
release the GIL, so BM25 (bm25s, numpy) runs on another core instead of after them. Once done, the BM25 worker reads
its hits' stored vectors, so de-duplication has every candidate's vector without another Chroma call. The dense
trace entry splits its time into ``embed_ms`` and ``search_ms``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrieval.dedup import Deduplicator, vectors_known_first
from retrieval.fusion import Fusion
from retrieval.index import Index
from retrieval.types import Hit, TraceEntry, top_scores, traced

_SEARCH_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ragline-bm25")
"""Worker threads for the BM25 half of a concurrent search; shared by every request of the process."""


@dataclass
class HybridHits:
    """Every list hybrid search produced, best first, and the trace entries of its steps in order."""

    bm25: list[Hit]
    dense: list[Hit]
    fused: list[Hit]
    deduplicated: list[Hit]
    """The fused list without near duplicates; the fused list itself when de-duplication was not asked for."""
    trace: list[TraceEntry] = field(default_factory=list)


def search_both(
    index: Index,
    collection: str,
    query: str,
    *,
    bm25_k: int,
    dense_k: int,
    where: Mapping[str, Any] | None = None,
    prefetch_vectors: bool = True,
    trace: list[TraceEntry],
) -> tuple[list[Hit], list[Hit]]:
    """BM25 and dense hits of ``query``, BM25 in a worker thread beside the dense search, filters applied inside
    both; appends the ``bm25`` and ``dense`` entries to ``trace`` even when a search fails (then re-raises that
    failure). ``prefetch_vectors`` has BM25 read its hits' stored vectors for de-duplication."""
    if bm25_k <= 0 or dense_k <= 0:
        raise ValueError(f"bm25_k and dense_k must be positive, got {bm25_k} and {dense_k}")
    lexical = _SEARCH_POOL.submit(_bm25, index, collection, query, bm25_k, where, prefetch_vectors=prefetch_vectors)
    dense_entry = TraceEntry(stage="dense", details={"concurrent_with": "bm25"})
    try:
        dense_hits = _dense(index, collection, query, dense_k, where, dense_entry)
    finally:
        bm25_hits, bm25_entry, bm25_error = lexical.result()  # waits for BM25 even when the dense side failed
        trace.extend([bm25_entry, dense_entry])
    if bm25_error is not None:
        raise bm25_error
    return bm25_hits, dense_hits


def _dense(
    index: Index, collection: str, query: str, k: int, where: Mapping[str, Any] | None, entry: TraceEntry
) -> list[Hit]:
    started = time.perf_counter()
    try:
        vector = index.embedder.embed([query])[0]
        embedded = time.perf_counter()
        hits = index.search_dense(collection, query, k, where, vector=vector)
        entry.details.update(
            embed_ms=round((embedded - started) * 1000, 3),
            search_ms=round((time.perf_counter() - embedded) * 1000, 3),
            hits=top_scores(hits),
        )
        entry.items_out = len(hits)
        return hits
    finally:
        entry.ms = (time.perf_counter() - started) * 1000


def _bm25(
    index: Index,
    collection: str,
    query: str,
    k: int,
    where: Mapping[str, Any] | None,
    *,
    prefetch_vectors: bool,
) -> tuple[list[Hit], TraceEntry, Exception | None]:
    """Runs in a worker thread: returns its error instead of raising, so the caller records both entries."""
    entry = TraceEntry(stage="bm25", details={"concurrent_with": "dense"})
    started = time.perf_counter()
    try:
        hits = index.search_bm25(collection, query, k, where)
        searched = time.perf_counter()
        if prefetch_vectors and hits:
            vectors = index.vectors.vectors(collection, [h.chunk.id for h in hits])
            for hit, vector in zip(hits, vectors, strict=True):
                hit.vector = vector
            entry.details["vectors_ms"] = round((time.perf_counter() - searched) * 1000, 3)
        entry.items_out = len(hits)
        entry.details["hits"] = top_scores(hits)
        return hits, entry, None
    except Exception as error:
        return [], entry, error
    finally:
        entry.ms = (time.perf_counter() - started) * 1000


def fuse(fusion: Fusion, lists: Mapping[str, Sequence[Hit]], *, trace: list[TraceEntry]) -> list[Hit]:
    """One fused ranking of ``lists`` (named ranked lists); appends the ``fusion`` entry to ``trace``."""
    with traced(trace, "fusion", items_in=sum(map(len, lists.values()))) as entry:
        fused = fusion.fuse(lists)
        entry.items_out = len(fused)
        entry.details.update(**fusion.describe(), hits=top_scores(fused))
    return fused


def deduplicate(
    index: Index,
    collection: str,
    candidates: list[Hit],
    *,
    threshold: float,
    known: Sequence[Hit] = (),
    trace: list[TraceEntry],
) -> list[Hit]:
    """``candidates`` without exact and near duplicates (the better-ranked copy kept); appends the ``dedup`` entry.

    Vectors come from the hits in ``known`` (the searches' hits, which carry them) first; only the rest are read
    from the index, and the entry counts those reads as ``vectors_fetched``.
    """
    with traced(trace, "dedup", items_in=len(candidates)) as entry:
        fetched: list[str] = []

        def fetch(ids: list[str]) -> np.ndarray:
            fetched.extend(ids)
            return index.vectors.vectors(collection, ids)

        kept, dropped = Deduplicator(vectors_known_first(known, fetch), threshold)(candidates)
        entry.items_out = len(kept)
        entry.details.update(
            threshold=threshold,
            vectors_fetched=len(fetched),
            dropped=[{"chunk_id": d.dropped, "duplicate_of": d.kept, "kind": d.kind} for d in dropped],
        )
    return kept


def hybrid_search(
    index: Index,
    collection: str,
    query: str,
    *,
    bm25_k: int,
    dense_k: int,
    fusion: Fusion,
    where: Mapping[str, Any] | None = None,
    dedup_threshold: float | None = None,
    prefetch_vectors: bool = True,
) -> HybridHits:
    """BM25 ∥ dense → fusion → de-duplication (skipped when ``dedup_threshold`` is None), as the query pipeline runs
    them; settings-free, so benchmarks and experiments can vary each number."""
    trace: list[TraceEntry] = []
    bm25, dense = search_both(
        index,
        collection,
        query,
        bm25_k=bm25_k,
        dense_k=dense_k,
        where=where,
        prefetch_vectors=prefetch_vectors,
        trace=trace,
    )
    fused = fuse(fusion, {"bm25": bm25, "dense": dense}, trace=trace)
    deduplicated = (
        fused
        if dedup_threshold is None
        else deduplicate(index, collection, fused, threshold=dedup_threshold, known=[*dense, *bm25], trace=trace)
    )
    return HybridHits(bm25=bm25, dense=dense, fused=fused, deduplicated=deduplicated, trace=trace)
