"""One searcher of the index as a stage: BM25 or dense alone, for pipelines that search in turn (the baseline the
retrieval benchmark times ``HybridSearch`` against)."""

from __future__ import annotations

from retrieval.index import Index
from retrieval.types import QueryState, top_scores


class Search:
    """Writes ``candidates[kind]`` (``bm25`` or ``dense``) with the top ``k`` hits; filters apply inside the search."""

    reads: tuple[str, ...] = ()

    def __init__(self, index: Index, kind: str, k: int) -> None:
        searches = {"bm25": index.search_bm25, "dense": index.search_dense}
        if kind not in searches:
            raise ValueError(f"kind must be one of {', '.join(searches)}, got {kind!r}")
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.name, self.k, self._search = kind, k, searches[kind]
        self.writes: tuple[str, ...] = (kind,)

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name) as entry:
            hits = self._search(state.collection, state.query, self.k, state.filters)
            state.candidates[self.name] = hits
            entry.items_out = len(hits)
            entry.details["hits"] = top_scores(hits)
        return state
