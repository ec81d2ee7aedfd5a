"""Grounding after the citation check: an answer whose claims no cited source supports is flagged or withdrawn."""

from __future__ import annotations

import pytest

from app.query.grounding import UNGROUNDED_WARNING, assess, claim_sentences, withdrawn
from app.query.outcome import TRUNCATED_NOTE
from app.query.pipeline import Pipeline
from app.query.stages.citations import CheckCitations
from retrieval.types import Chunk, Hit, QueryState

PAGING = "Out of hours, ERR-4012 pages the on-call database engineer through the primary rota."
BILLING = "Invoices are issued on the first working day of each month."


def _state(answer: str) -> QueryState:
    state = QueryState(question="Who should be paged when ERR-4012 fires at night?", collection="c")
    state.context = [
        Hit(Chunk(id="c1", doc_id="runbook.md", text=PAGING, metadata={"title": "Runbook"}), 0.9, "fused"),
        Hit(Chunk(id="c2", doc_id="billing.md", text=BILLING, metadata={"title": "Billing"}), 0.5, "fused"),
    ]
    state.candidates["selected"] = list(state.context)
    state.answer = answer
    return state


def test_an_answer_no_source_supports_is_flagged_and_counted() -> None:
    state = CheckCitations()(_state("The incident commander should be paged by phone. They decide the next step."))
    details = state.trace[-1].details
    assert state.citations == [] and not state.grounded
    assert state.unsupported_sentences == 2
    assert details["grounded"] is False and details["action"] == "flagged" and details["unsupported_sentences"] == 2
    answer = Pipeline._answer(state)
    assert answer.warning == UNGROUNDED_WARNING
    body = answer.as_dict()
    assert body["grounded"] is False and body["unsupported_sentences"] == 2 and body["warning"] == UNGROUNDED_WARNING
    assert body["trace"]["grounded"] is False and body["trace"]["unsupported_sentences"] == 2


def test_the_abstain_policy_replaces_the_draft_with_the_closest_sources() -> None:
    draft = "The incident commander should be paged by phone."
    state = CheckCitations("abstain")(_state(draft))
    details = state.trace[-1].details
    assert state.abstained and state.grounded and state.citations == []
    assert state.answer.startswith("I don't know") and "runbook.md" in state.answer
    assert details["action"] == "abstained" and details["ungrounded_answer"] == draft
    assert state.unsupported_sentences == 1  # the withheld draft's claims still count
    answer = Pipeline._answer(state)
    assert answer.warning is None and withdrawn(answer.trace)


def test_one_supported_sentence_makes_the_answer_grounded_and_the_rest_is_counted() -> None:
    state = CheckCitations()(_state("The on-call database engineer is paged [1]. Pagers are yellow."))
    assert state.grounded and state.unsupported_sentences == 1
    assert [c["id"] for c in state.citations] == [1]
    assert Pipeline._answer(state).warning is None


def test_an_unmarked_sentence_the_source_supports_is_attributed_and_grounded() -> None:
    state = CheckCitations()(_state("ERR-4012 pages the on-call database engineer out of hours."))
    assert state.grounded and state.unsupported_sentences == 0 and state.citations[0]["origin"] == "attributed"


def test_an_invalid_marker_does_not_count_as_support() -> None:
    state = CheckCitations()(_state("The incident commander is paged [7]."))
    assert state.invalid_citations == [7] and not state.grounded


@pytest.mark.parametrize(
    "answer",
    ["I don't know: the sources do not say who is paged.", "The sources do not mention ERR-4012 at night."],
)
def test_a_refusal_claims_nothing_and_is_never_flagged(answer: str) -> None:
    state = CheckCitations("abstain")(_state(answer))
    assert state.grounded and state.unsupported_sentences == 0 and not state.abstained
    assert state.trace[-1].details["refusal"] is True


def test_claim_sentences_skip_code_notes_and_bare_markers() -> None:
    answer = f"Run this [1].\n```sql\nSELECT 1;\nSELECT 2;\n```\n[2]\nIt prints one.\n\n{TRUNCATED_NOTE}"
    assert claim_sentences(answer) == ["Run this [1].", "It prints one."]
    grounding = assess(answer)
    assert (grounding.sentences, grounding.supported, grounding.unsupported) == (2, 1, 1)


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="flag"):
        CheckCitations("ignore")  # type: ignore[arg-type]
