"""Cross-encoder reranking as a stage; the model itself is ``retrieval.rerank.CrossEncoderReranker``."""

from __future__ import annotations

from retrieval.rerank import CrossEncoderReranker
from retrieval.types import Hit, QueryState, top_scores


def hits_with_previous_rank(candidates: list[Hit], reranked: list[Hit]) -> list[dict[str, object]]:
    """The trace's head of the reranked list, each hit with the rank it had before: what the inspector shows to
    say what reranking moved. Shared by both rerank modes."""
    before = {hit.chunk.id: rank for rank, hit in enumerate(candidates, start=1)}
    hits = top_scores(reranked)
    for hit in hits:
        hit["previous_rank"] = before[str(hit["chunk_id"])]
    return hits


class Rerank:
    """Rescores the best ``top_n`` candidates of ``source`` into ``candidates["reranked"]``.

    Candidates below ``top_n`` are left out rather than appended: their fusion scores are on another scale, and
    context selection only ever reads the head of the list.
    """

    name = "rerank"
    writes: tuple[str, ...] = ("reranked",)

    def __init__(
        self, reranker: CrossEncoderReranker, top_n: int, source: str = "deduplicated", weight: float = 1.0
    ) -> None:
        if top_n <= 0:
            raise ValueError(f"top_n must be positive, got {top_n}")
        self.reranker, self.top_n, self.source, self.weight = reranker, top_n, source, weight
        self.reads: tuple[str, ...] = (source,)

    def __call__(self, state: QueryState) -> QueryState:
        candidates = state.read(self.source, by=self.name)[: self.top_n]
        with state.traced(self.name, items_in=len(candidates)) as entry:
            reranked = self.reranker.rerank(state.query, candidates, self.weight)
            state.candidates["reranked"] = reranked
            hits = hits_with_previous_rank(candidates, reranked)
            entry.items_out = len(reranked)
            entry.details.update(
                model=self.reranker.name,
                top_n=self.top_n,
                max_length=self.reranker.max_length,
                weight=self.weight,
                hits=hits,
            )
        return state
