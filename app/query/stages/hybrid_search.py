"""The BM25 ∥ dense step of hybrid search as a stage: both searches of one query at the same time."""

from __future__ import annotations

from retrieval.hybrid import search_both
from retrieval.index import Index
from retrieval.types import QueryState


class HybridSearch:
    """Writes ``candidates["bm25"]`` and ``candidates["dense"]`` and their two trace entries (``search_both``).

    Filters apply inside both searches; with ``prefetch_vectors`` every candidate carries its stored vector, so
    ``Deduplicate`` needs no further read of the index.
    """

    name = "hybrid_search"
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ("bm25", "dense")

    def __init__(self, index: Index, bm25_k: int, dense_k: int, *, prefetch_vectors: bool = True) -> None:
        if bm25_k <= 0 or dense_k <= 0:
            raise ValueError(f"bm25_k and dense_k must be positive, got {bm25_k} and {dense_k}")
        self.index, self.bm25_k, self.dense_k, self.prefetch_vectors = index, bm25_k, dense_k, prefetch_vectors

    def __call__(self, state: QueryState) -> QueryState:
        state.candidates["bm25"], state.candidates["dense"] = search_both(
            self.index,
            state.collection,
            state.query,
            bm25_k=self.bm25_k,
            dense_k=self.dense_k,
            where=state.filters,
            prefetch_vectors=self.prefetch_vectors,
            trace=state.trace,
        )
        return state
