from app.query.citation_check import check_citations
from retrieval.types import Chunk, Hit


def _hit(doc_id: str, text: str) -> Hit:
    return Hit(Chunk(id=doc_id, doc_id=doc_id, text=text, metadata={"source": doc_id, "title": doc_id}), 1.0, "fused")


CONTEXT = [
    _hit("us.md", "US customers may request a refund within 14 days of the charge date."),
    _hit("eu.md", "EU customers have 30 days from the date of a charge to request a refund."),
]


def test_model_citations_are_kept_and_mapped() -> None:
    result = check_citations("EU customers have 30 days [2].", CONTEXT)
    assert result.answer == "EU customers have 30 days [2]."
    assert [(c["id"], c["doc_id"], c["origin"]) for c in result.citations] == [(2, "eu.md", "model")]
    assert result.invalid == [] and result.attributed == []


def test_out_of_range_citations_are_removed_and_reported() -> None:
    result = check_citations("EU customers have 30 days [7][2].", CONTEXT)
    assert "[7]" not in result.answer
    assert result.invalid == [7]
    assert [c["id"] for c in result.citations] == [2]


def test_uncited_sentence_is_attributed_to_the_source_holding_its_number() -> None:
    result = check_citations("EU customers can ask for a refund within 30 days.", CONTEXT)
    assert result.answer == "EU customers can ask for a refund within 30 days [2]."
    assert [(c["doc_id"], c["origin"]) for c in result.citations] == [("eu.md", "attributed")]


def test_unsupported_sentence_gets_no_citation() -> None:
    result = check_citations("I don't know.", CONTEXT)
    assert result.citations == [] and result.answer == "I don't know."
    result = check_citations("Refunds take 90 days for customers.", CONTEXT)
    assert result.citations == []
