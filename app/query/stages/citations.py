"""The citation check after generation, as a stage."""

from __future__ import annotations

from app.query.citation_check import check_citations
from retrieval.types import QueryState


class CheckCitations:
    """Checks the answer's ``[n]`` markers against the context shown as sources, and attributes unmarked sentences
    (``app.query.citation_check``); an abstention or empty answer cites nothing."""

    name = "citations"
    reads: tuple[str, ...] = ("answer", "context")
    writes: tuple[str, ...] = ("answer", "citations")

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name, items_in=len(state.context)) as entry:
            if state.abstained or not state.answer:
                state.citations, state.invalid_citations = [], []
                entry.details.update(cited=[], invalid=[], attributed=[], skipped="abstained or empty answer")
                return state
            checked = check_citations(state.answer, state.context)
            state.answer, state.citations, state.invalid_citations = checked.answer, checked.citations, checked.invalid
            entry.items_out = len(state.citations)
            entry.details.update(
                cited=[c["id"] for c in state.citations], invalid=checked.invalid, attributed=checked.attributed
            )
        return state
