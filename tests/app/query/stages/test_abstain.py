"""The abstention gate: weak dense evidence gives an answer that says so, lists where to look, and cites nothing."""

from __future__ import annotations

import pytest

from app.query.stages.abstain import AbstainGate
from app.query.stages.citations import CheckCitations
from retrieval.types import Hit, QueryState
from tests.app.query.conftest import make_hits

QUESTION = "How long do EU customers have to request a refund?"


def _state(hits: list[Hit]) -> QueryState:
    state = QueryState(question=QUESTION, collection="c")
    state.candidates["deduplicated"] = hits
    return state


def test_abstention_skips_generation_lists_sources_and_cites_nothing() -> None:
    state = _state(make_hits(3))
    state.candidates["dense"] = [Hit(h.chunk, 0.12, "dense") for h in make_hits(3)]
    state.context = state.candidates["selected"] = make_hits(3)
    state = CheckCitations()(AbstainGate(0.3)(state))
    assert state.abstained and state.citations == []
    assert state.answer.startswith("I don't know") and "[" not in state.answer
    assert all(f"doc{i}.md" in state.answer for i in range(3))
    gate = state.trace[0].details
    assert gate["abstain"] and gate["score"] == pytest.approx(0.12) and len(gate["closest_sources"]) == 3


def test_strong_evidence_or_a_zero_threshold_does_not_abstain() -> None:
    for threshold in (0.0, 0.1):
        state = _state(make_hits(1))
        state.candidates["dense"] = [Hit(make_hits(1)[0].chunk, 0.12, "dense")]
        assert not AbstainGate(threshold)(state).abstained


def test_a_collection_cut_replaces_the_global_one_for_that_collection_only() -> None:
    gate = AbstainGate(0.1, {"strict": 0.5})
    for collection, abstains in (("strict", True), ("other", False)):
        state = _state(make_hits(1))
        state.collection = collection
        state.candidates["dense"] = [Hit(make_hits(1)[0].chunk, 0.3, "dense")]
        state = gate(state)
        assert state.abstained is abstains
        assert state.trace[-1].details["threshold"] == (0.5 if abstains else 0.1)
