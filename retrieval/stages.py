"""Retrieval stages of the query pipeline. Each takes the ``QueryState``, records one trace entry, returns it."""

from __future__ import annotations

from collections.abc import Callable

from retrieval.dedup import Deduplicator
from retrieval.fusion import Fusion
from retrieval.index import Index
from retrieval.types import Hit, QueryState


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
            deduplicate = Deduplicator(
                lambda hits: self.index.vectors.vectors(state.collection, [h.chunk.id for h in hits]), self.threshold
            )
            kept, dropped = deduplicate(candidates)
            state.candidates["deduplicated"] = kept
            entry.items_out = len(kept)
            entry.details.update(
                threshold=self.threshold,
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
