"""Context selection as a stage: the best candidates that fit the evidence share of the token budget."""

from __future__ import annotations

from collections.abc import Callable

from retrieval.types import Hit, QueryState


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
    writes: tuple[str, ...] = ("context", "selected")

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
        self.reads: tuple[str, ...] = (source,)
        self.allowance, self.measure, self.trim, self.min_trim_tokens = allowance, measure, trim, min_trim_tokens

    def __call__(self, state: QueryState) -> QueryState:
        candidates = state.read(self.source, by=self.name)
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
