"""Retrieval stages of the query pipeline. Each takes the ``QueryState``, records one trace entry, returns it."""

from __future__ import annotations

from retrieval.fusion import ReciprocalRankFusion
from retrieval.index import Index
from retrieval.types import Hit, QueryState


def _top_scores(hits: list[Hit], n: int = 10) -> list[dict[str, object]]:
    return [{"chunk_id": h.chunk.id, "doc_id": h.chunk.doc_id, "score": round(h.score, 6)} for h in hits[:n]]


class BM25Search:
    name = "bm25"

    def __init__(self, index: Index, k: int) -> None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.index, self.k = index, k

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name) as entry:
            hits = self.index.search_bm25(state.collection, state.question, self.k, state.filters)
            state.candidates[self.name] = hits
            entry.items_out = len(hits)
            entry.details["hits"] = _top_scores(hits)
        return state


class DenseSearch:
    name = "dense"

    def __init__(self, index: Index, k: int) -> None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.index, self.k = index, k

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name) as entry:
            hits = self.index.search_dense(state.collection, state.question, self.k, state.filters)
            state.candidates[self.name] = hits
            entry.items_out = len(hits)
            entry.details["hits"] = _top_scores(hits)
        return state


class Fuse:
    """Fuses every candidate list gathered so far into ``candidates["fused"]``."""

    name = "fusion"

    def __init__(self, fusion: ReciprocalRankFusion, sources: tuple[str, ...] = ("bm25", "dense")) -> None:
        self.fusion, self.sources = fusion, sources

    def __call__(self, state: QueryState) -> QueryState:
        lists = [state.candidates.get(source, []) for source in self.sources]
        with state.traced(self.name, items_in=sum(map(len, lists))) as entry:
            fused = self.fusion.fuse(lists)
            state.candidates["fused"] = fused
            entry.items_out = len(fused)
            entry.details.update(method=self.fusion.name, k=self.fusion.k, hits=_top_scores(fused))
        return state


class SelectContext:
    """Keeps the best ``k`` fused chunks as the evidence for the prompt."""

    name = "select"

    def __init__(self, k: int, source: str = "fused") -> None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.k, self.source = k, source

    def __call__(self, state: QueryState) -> QueryState:
        candidates = state.candidates.get(self.source, [])
        with state.traced(self.name, items_in=len(candidates)) as entry:
            state.context = list(candidates[: self.k])
            entry.items_out = len(state.context)
            entry.details["chunk_ids"] = [h.chunk.id for h in state.context]
        return state
