"""The citation check after generation, as a stage, and the grounding decision that follows from it."""

from __future__ import annotations

from typing import Literal

from app.query.citation_check import check_citations
from app.query.grounding import assess
from app.query.stages.abstain import abstain_now
from retrieval.types import QueryState

UngroundedPolicy = Literal["flag", "abstain"]


class CheckCitations:
    """Checks the answer's ``[n]`` markers against the context shown as sources, attributes unmarked sentences
    (``app.query.citation_check``), then counts the sentences left without support (``app.query.grounding``).

    An answer with claims but no supported sentence is flagged (``state.grounded = False``) or, under the
    ``abstain`` policy, replaced by the abstention text with the closest sources. An abstention or empty answer
    cites nothing and is grounded by definition.
    """

    name = "citations"
    reads: tuple[str, ...] = ("answer", "context")
    writes: tuple[str, ...] = ("answer", "citations")

    def __init__(self, ungrounded: UngroundedPolicy = "flag") -> None:
        if ungrounded not in ("flag", "abstain"):
            raise ValueError(f"ungrounded must be 'flag' or 'abstain', got {ungrounded!r}")
        self.ungrounded = ungrounded

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name, items_in=len(state.context)) as entry:
            if state.abstained or not state.answer:
                state.citations, state.invalid_citations = [], []
                entry.details.update(cited=[], invalid=[], attributed=[], skipped="abstained or empty answer")
                return state
            checked = check_citations(state.answer, state.context)
            state.answer, state.citations, state.invalid_citations = checked.answer, checked.citations, checked.invalid
            grounding = assess(state.answer)
            state.grounded, state.unsupported_sentences = grounding.grounded, grounding.unsupported
            entry.details.update(
                cited=[c["id"] for c in state.citations],
                invalid=checked.invalid,
                attributed=checked.attributed,
                **grounding.as_details(),
            )
            if not grounding.grounded and self.ungrounded == "abstain":
                entry.details.update(action="abstained", ungrounded_answer=state.answer)
                entry.details["closest_sources"] = abstain_now(state)
                state.citations, state.grounded = [], True
            elif not grounding.grounded:
                entry.details.update(action="flagged")
            entry.items_out = len(state.citations)
        return state
