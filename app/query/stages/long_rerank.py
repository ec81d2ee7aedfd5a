"""Long-context reranking as a stage (``rerank_mode = "long-context"``); the scoring is
``retrieval.long_rerank.LongContextReranker``.

It stands where the isolated ``rerank`` stage stands and writes the same ``candidates["reranked"]``, so every later
stage (windows, screening, selection) is the same in both modes; its trace entry is also named ``rerank`` (the UI
and ``ragline demo`` look for it) and says ``mode: long-context`` and how many joint passages were scored.
"""

from __future__ import annotations

from app.query.stages.rerank import hits_with_previous_rank
from retrieval.long_rerank import LongContextReranker
from retrieval.types import QueryState


class LongContextRerank:
    """Rescores the best ``top_n`` candidates of ``source``, each read with its retrieved same-document neighbours in
    document order, into ``candidates["reranked"]`` (candidates below ``top_n`` are left out, as in ``Rerank``)."""

    name = "rerank"
    writes: tuple[str, ...] = ("reranked",)

    def __init__(
        self, reranker: LongContextReranker, top_n: int, source: str = "deduplicated", weight: float = 1.0
    ) -> None:
        if top_n <= 0:
            raise ValueError(f"top_n must be positive, got {top_n}")
        self.reranker, self.top_n, self.source, self.weight = reranker, top_n, source, weight
        self.reads: tuple[str, ...] = (source,)

    def __call__(self, state: QueryState) -> QueryState:
        candidates = state.read(self.source, by=self.name)[: self.top_n]
        with state.traced(self.name, items_in=len(candidates)) as entry:
            reranked, joint = self.reranker.rerank_joint(state.query, candidates, self.weight)
            state.candidates["reranked"] = reranked
            hits = hits_with_previous_rank(candidates, reranked)
            entry.items_out = len(reranked)
            entry.details.update(
                mode="long-context",
                model=self.reranker.name,
                top_n=self.top_n,
                max_length=self.reranker.max_length,
                weight=self.weight,
                joint_passages=len(joint.texts),
                scored_alone=joint.alone,
                hits=hits,
            )
        return state
