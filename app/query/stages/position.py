"""Evidence positioning as a stage; the orders themselves are in ``app.context.positioning``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from retrieval.types import Hit, QueryState


class PositionContext:
    """Reorders ``state.context`` (edge, relevance or document order) and traces the final order."""

    name = "position"
    reads: tuple[str, ...] = ("context",)
    writes: tuple[str, ...] = ("context",)

    def __init__(self, positioning: str, order: Callable[[Sequence[Hit]], list[Hit]]) -> None:
        self.positioning, self.order = positioning, order

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name, items_in=len(state.context)) as entry:
            rank = {h.chunk.id: i + 1 for i, h in enumerate(state.context)}
            state.context = self.order(state.context)
            entry.items_out = len(state.context)
            entry.details.update(
                positioning=self.positioning,
                order=[h.chunk.id for h in state.context],
                relevance_ranks=[rank[h.chunk.id] for h in state.context],
            )
        return state
