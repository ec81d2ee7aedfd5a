"""When the evidence is too weak, say so instead of guessing.

The decision uses the best dense (cosine) score of the query against the collection: unlike fused scores, which
are normalised per query so that the best hit always scores near 1, a cosine is comparable across queries, and it
exists whether or not a reranker runs. ``abstain_threshold`` is calibrated with ``ragline eval abstention``.
"""

from __future__ import annotations

from dataclasses import dataclass

from retrieval.types import Hit, QueryState

CLOSEST_SOURCES = 3


@dataclass(frozen=True)
class Abstention:
    score: float | None
    threshold: float
    abstain: bool


def best_dense_score(state: QueryState) -> float | None:
    """The best cosine of the dense search; None when it found nothing (which abstains under any cut above 0)."""
    return max((hit.score for hit in state.read("dense", by=AbstainGate.name)), default=None)


def decide(state: QueryState, threshold: float) -> Abstention:
    """Abstain when the best dense score is below ``threshold`` (a threshold of 0 or below never abstains)."""
    score = best_dense_score(state)
    if threshold <= 0:
        return Abstention(score, threshold, False)
    return Abstention(score, threshold, score is None or score < threshold)


def closest_sources(hits: list[Hit], n: int = CLOSEST_SOURCES) -> list[dict[str, object]]:
    """The best-scored chunk of each of the ``n`` first documents: a reader looks for documents, not chunks."""
    best: dict[str, Hit] = {}
    for hit in hits:
        if hit.chunk.doc_id not in best:
            best[hit.chunk.doc_id] = hit
        if len(best) == n:
            break
    return [
        {
            "doc_id": hit.chunk.doc_id,
            "chunk_id": hit.chunk.id,
            "title": hit.chunk.metadata.get("title") or hit.chunk.doc_id,
            "score": round(hit.score, 4),
        }
        for hit in best.values()
    ]


def abstention_text(sources: list[dict[str, object]]) -> str:
    """The answer when abstaining: no claim, no citation marker, only where a reader might look next."""
    text = "I don't know: the documents I can search do not answer this question."
    if sources:
        listed = "; ".join(f"{s['title']} ({s['doc_id']})" for s in sources)
        text += f" The closest sources I found are: {listed}."
    return text


def abstain_now(state: QueryState) -> list[dict[str, object]]:
    """Mark the state as abstaining with the abstention answer; returns the closest sources it lists."""
    sources = closest_sources(state.candidates.get("selected") or state.context)
    state.abstained, state.answer = True, abstention_text(sources)
    return sources


class AbstainGate:
    """Marks the state as abstaining and writes the abstention answer; generation is then skipped."""

    name = "abstain"
    reads: tuple[str, ...] = ("dense", "context")
    writes: tuple[str, ...] = ("answer",)

    def __init__(self, threshold: float, per_collection: dict[str, float] | None = None) -> None:
        self.threshold, self.per_collection = threshold, dict(per_collection or {})

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name, items_in=len(state.context)) as entry:
            decision = decide(state, self.per_collection.get(state.collection, self.threshold))
            entry.details.update(score=decision.score, threshold=decision.threshold, abstain=decision.abstain)
            if decision.abstain:
                entry.details["closest_sources"] = abstain_now(state)
            entry.items_out = 0 if decision.abstain else len(state.context)
        return state
