"""De-duplication of the fused candidates as a stage, before reranking spends time on copies."""

from __future__ import annotations

from retrieval.hybrid import deduplicate
from retrieval.index import Index
from retrieval.types import QueryState

VECTOR_SOURCES = ("dense", "bm25")
"""Candidate lists whose hits may carry stored vectors: reused when present, so dedup reads fewer from the index.
They are a cache, not an input, so a pipeline without them still de-duplicates (reading every vector)."""


class Deduplicate:
    """Drops exact and near-duplicate candidates of ``source`` (keeping the better-ranked copy) into
    ``candidates["deduplicated"]``."""

    name = "dedup"
    writes: tuple[str, ...] = ("deduplicated",)

    def __init__(self, index: Index, threshold: float, source: str = "fused") -> None:
        self.index, self.threshold, self.source = index, threshold, source
        self.reads: tuple[str, ...] = (source,)

    def __call__(self, state: QueryState) -> QueryState:
        known = [hit for source in VECTOR_SOURCES for hit in state.candidates.get(source, [])]
        state.candidates["deduplicated"] = deduplicate(
            self.index,
            state.collection,
            state.read(self.source, by=self.name),
            threshold=self.threshold,
            known=known,
            trace=state.trace,
        )
        return state
