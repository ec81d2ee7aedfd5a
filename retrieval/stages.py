"""Retrieval stages of the query pipeline. Each takes the ``QueryState``, records one trace entry, returns it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from retrieval.dedup import Deduplicator, vectors_known_first
from retrieval.fusion import Fusion
from retrieval.index import Index
from retrieval.types import Hit, QueryState, TraceEntry


def _top_scores(hits: list[Hit], n: int = 10) -> list[dict[str, object]]:
    return [{"chunk_id": h.chunk.id, "doc_id": h.chunk.doc_id, "score": round(h.score, 6)} for h in hits[:n]]


class Search:
    """One searcher of the index (``bm25`` or ``dense``) as a stage; filters apply inside the search."""

    def __init__(self, index: Index, kind: str, k: int) -> None:
        searches = {"bm25": index.search_bm25, "dense": index.search_dense}
        if kind not in searches:
            raise ValueError(f"kind must be one of {', '.join(searches)}, got {kind!r}")
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.name, self.k, self._search = kind, k, searches[kind]

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name) as entry:
            hits = self._search(state.collection, state.query, self.k, state.filters)
            state.candidates[self.name] = hits
            entry.items_out = len(hits)
            entry.details["hits"] = _top_scores(hits)
        return state


_SEARCH_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ragline-bm25")
"""Worker threads for the BM25 half of ``HybridSearch``; shared by every request of the process."""


class HybridSearch:
    """BM25 and dense search of one query, at the same time: one stage instead of ``Search("bm25")`` followed by
    ``Search("dense")``, with the same candidates and the same two trace entries.

    Why: the query embedding (onnxruntime or torch, one thread) and Chroma's search release the GIL, so BM25
    (bm25s, numpy) runs beside them on another core instead of after them. BM25 runs in a worker thread and, once
    done, reads its hits' stored vectors, so ``Deduplicate`` has every candidate's vector without another Chroma
    call after the searches. The dense trace entry splits its time into ``embed_ms`` and ``search_ms``.
    """

    name = "hybrid_search"

    def __init__(self, index: Index, bm25_k: int, dense_k: int, *, prefetch_vectors: bool = True) -> None:
        if bm25_k <= 0 or dense_k <= 0:
            raise ValueError(f"bm25_k and dense_k must be positive, got {bm25_k} and {dense_k}")
        self.index, self.bm25_k, self.dense_k, self.prefetch_vectors = index, bm25_k, dense_k, prefetch_vectors

    def __call__(self, state: QueryState) -> QueryState:
        lexical = _SEARCH_POOL.submit(self._bm25, state.collection, state.query, state.filters)
        dense_entry = TraceEntry(stage="dense", details={"concurrent_with": "bm25"})
        try:
            dense_hits = self._dense(state, dense_entry)
        finally:
            bm25_hits, bm25_entry, bm25_error = lexical.result()  # waits for BM25 even when the dense side failed
            state.trace.extend([bm25_entry, dense_entry])
        if bm25_error is not None:
            raise bm25_error
        state.candidates["bm25"], state.candidates["dense"] = bm25_hits, dense_hits
        return state

    def _dense(self, state: QueryState, entry: TraceEntry) -> list[Hit]:
        started = time.perf_counter()
        try:
            vector = self.index.embedder.embed([state.query])[0]
            embedded = time.perf_counter()
            hits = self.index.search_dense(state.collection, state.query, self.dense_k, state.filters, vector=vector)
            entry.details.update(
                embed_ms=round((embedded - started) * 1000, 3),
                search_ms=round((time.perf_counter() - embedded) * 1000, 3),
                hits=_top_scores(hits),
            )
            entry.items_out = len(hits)
            return hits
        finally:
            entry.ms = (time.perf_counter() - started) * 1000

    def _bm25(
        self, collection: str, query: str, where: Mapping[str, Any] | None
    ) -> tuple[list[Hit], TraceEntry, Exception | None]:
        """Runs in a worker thread: returns its error instead of raising, so the caller records both entries."""
        entry = TraceEntry(stage="bm25", details={"concurrent_with": "dense"})
        started = time.perf_counter()
        try:
            hits = self.index.search_bm25(collection, query, self.bm25_k, where)
            searched = time.perf_counter()
            if self.prefetch_vectors and hits:
                vectors = self.index.vectors.vectors(collection, [h.chunk.id for h in hits])
                for hit, vector in zip(hits, vectors, strict=True):
                    hit.vector = vector
                entry.details["vectors_ms"] = round((time.perf_counter() - searched) * 1000, 3)
            entry.items_out = len(hits)
            entry.details["hits"] = _top_scores(hits)
            return hits, entry, None
        except Exception as error:
            return [], entry, error
        finally:
            entry.ms = (time.perf_counter() - started) * 1000


class Fuse:
    """Fuses every candidate list gathered so far into ``candidates["fused"]``."""

    name = "fusion"

    def __init__(self, fusion: Fusion, sources: tuple[str, ...] = ("bm25", "dense")) -> None:
        self.fusion, self.sources = fusion, sources

    def __call__(self, state: QueryState) -> QueryState:
        lists = {source: state.candidates.get(source, []) for source in self.sources}
        with state.traced(self.name, items_in=sum(map(len, lists.values()))) as entry:
            fused = self.fusion.fuse(lists)
            state.candidates["fused"] = fused
            entry.items_out = len(fused)
            entry.details.update(**self.fusion.describe(), hits=_top_scores(fused))
        return state


class Deduplicate:
    """Drops exact and near-duplicate candidates (keeping the better-ranked copy) before reranking."""

    name = "dedup"

    def __init__(self, index: Index, threshold: float, source: str = "fused") -> None:
        self.index, self.threshold, self.source = index, threshold, source

    def __call__(self, state: QueryState) -> QueryState:
        candidates = state.candidates.get(self.source, [])
        with state.traced(self.name, items_in=len(candidates)) as entry:
            fetched: list[str] = []

            def fetch(ids: list[str]) -> np.ndarray:
                fetched.extend(ids)
                return self.index.vectors.vectors(state.collection, ids)

            known = [*state.candidates.get("dense", []), *state.candidates.get("bm25", [])]
            lookup = vectors_known_first(known, fetch)
            kept, dropped = Deduplicator(lookup, self.threshold)(candidates)
            state.candidates["deduplicated"] = kept
            entry.items_out = len(kept)
            entry.details.update(
                threshold=self.threshold,
                vectors_fetched=len(fetched),
                dropped=[{"chunk_id": d.dropped, "duplicate_of": d.kept, "kind": d.kind} for d in dropped],
            )
        return state


class SelectContext:
    """Keeps the best ``k`` candidates, in relevance order, that fit the evidence share of the token budget.

    ``allowance(state)`` gives the evidence tokens this request may spend and ``measure(hit)`` what one source
    costs; both come from the application, which owns the generator's tokenizer. Without them only ``k`` limits.
    Candidates are taken best first; the first one that does not fit is trimmed to the room left when that room is
    at least ``min_trim_tokens`` (by ``trim(hit, tokens)``), and it and every less relevant candidate are dropped
    otherwise. The selection is also kept as ``candidates["selected"]``: later stages reorder ``context`` and
    still need the relevance ranking.
    """

    name = "select"

    def __init__(
        self,
        k: int,
        source: str = "deduplicated",
        *,
        allowance: Callable[[QueryState], int] | None = None,
        measure: Callable[[Hit], int] | None = None,
        trim: Callable[[Hit, int], Hit] | None = None,
        min_trim_tokens: int = 64,
    ) -> None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        if (allowance is None) != (measure is None):
            raise ValueError("allowance and measure go together: give both or neither")
        self.k, self.source = k, source
        self.allowance, self.measure, self.trim, self.min_trim_tokens = allowance, measure, trim, min_trim_tokens

    def __call__(self, state: QueryState) -> QueryState:
        candidates = state.candidates.get(self.source, [])
        with state.traced(self.name, items_in=len(candidates)) as entry:
            ranked = list(candidates[: self.k])
            if self.allowance is not None and self.measure is not None:
                ranked = self._fit(state, ranked, entry.details)
            state.context = ranked
            state.candidates["selected"] = list(ranked)
            entry.items_out = len(state.context)
            entry.details["chunk_ids"] = [h.chunk.id for h in state.context]
        return state

    def _fit(self, state: QueryState, ranked: list[Hit], details: dict[str, object]) -> list[Hit]:
        assert self.allowance is not None and self.measure is not None
        room = self.allowance(state)
        kept: list[Hit] = []
        spent, dropped, trimmed = 0, [], None
        for position, hit in enumerate(ranked):
            cost = self.measure(hit)
            if spent + cost <= room:
                kept.append(hit)
                spent += cost
                continue
            left = room - spent
            if self.trim is not None and left >= self.min_trim_tokens:
                cut = self.trim(hit, left)
                kept.append(cut)
                spent += self.measure(cut)
                trimmed = {"chunk_id": hit.chunk.id, "tokens_before": cost, "tokens_after": self.measure(cut)}
                dropped = [h.chunk.id for h in ranked[position + 1 :]]
            else:
                dropped = [h.chunk.id for h in ranked[position:]]
            break
        details.update(allowance=room, tokens=spent, dropped=dropped, trimmed=trimmed)
        return kept
