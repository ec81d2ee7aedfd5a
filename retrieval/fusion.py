"""Score fusion of ranked lists. Reciprocal rank fusion needs no score calibration across BM25 and cosine."""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.types import Hit


class ReciprocalRankFusion:
    """score(d) = Σ_lists 1 / (k + rank(d)), ranks from 1; ties keep first-seen order."""

    name = "rrf"

    def __init__(self, k: int = 60) -> None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.k = k

    def fuse(self, ranked_lists: Sequence[Sequence[Hit]]) -> list[Hit]:
        scores: dict[str, float] = {}
        first: dict[str, Hit] = {}
        for hits in ranked_lists:
            for rank, hit in enumerate(hits, start=1):
                scores[hit.chunk.id] = scores.get(hit.chunk.id, 0.0) + 1.0 / (self.k + rank)
                first.setdefault(hit.chunk.id, hit)
        ordered = sorted(scores, key=lambda chunk_id: scores[chunk_id], reverse=True)
        return [Hit(first[chunk_id].chunk, scores[chunk_id], "fused") for chunk_id in ordered]
