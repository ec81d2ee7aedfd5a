"""Long-context reranking: which text each candidate is scored in (joint passages), and that the scores are the
real cross-encoder's for those texts. The model's scores carry no relevance (a seeded head, see
``cross_encoder_dir``); what is checked is what it is given and how its scores are used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.long_rerank import GAP, LongContextReranker, joint_passages
from retrieval.rerank import CrossEncoderReranker, blend_and_sort
from retrieval.types import Chunk, Hit


def _hit(doc: str, position: int | None, text: str, score: float = 0.5, level: int = 0) -> Hit:
    metadata = {} if position is None else {"chunk_index": position}
    return Hit(Chunk(f"{doc}#{position}", doc, text, metadata, level=level), score, "fused")


def _words(text: str) -> int:
    return len(text.split())


def test_a_documents_candidates_are_joined_in_document_order_with_gaps_marked() -> None:
    hits = [_hit("a", 3, "three"), _hit("b", 0, "other"), _hit("a", 0, "zero"), _hit("a", 1, "one")]

    joint = joint_passages(hits, budget=100, count=_words)

    assert [joint.texts[i] for i in joint.of_hit] == [
        f"zero one{GAP}three",
        "other",
        f"zero one{GAP}three",
        f"zero one{GAP}three",
    ]
    assert len(joint.texts) == 2  # the three candidates of document a share one passage, scored once
    assert joint.alone == 0


def test_the_passage_grows_from_the_candidate_nearest_neighbour_first_within_the_budget() -> None:
    hits = [_hit("a", i, f"w{i} x") for i in range(5)]  # two words each, "…" one more

    joint = joint_passages(hits, budget=6, count=_words)  # the candidate and two neighbours

    texts = [joint.texts[i] for i in joint.of_hit]
    assert texts[0] == "w0 x w1 x w2 x"  # at the start, growth goes right only
    assert texts[2] == "w1 x w2 x w3 x"  # in the middle, one each side
    assert texts[4] == "w2 x w3 x w4 x"


def test_a_candidate_longer_than_the_budget_is_scored_alone_and_unpositioned_ones_are_counted() -> None:
    hits = [
        _hit("a", 0, "one two three four five six"),
        _hit("a", 1, "seven"),
        _hit("a", None, "no position"),
        _hit("a", 2, "summary", level=1),
    ]

    joint = joint_passages(hits, budget=3, count=_words)

    texts = [joint.texts[i] for i in joint.of_hit]
    assert texts == ["one two three four five six", "seven", "no position", "summary"]
    assert joint.alone == 2


def test_long_context_scores_are_the_cross_encoders_for_the_joint_passages(cross_encoder_dir: Path) -> None:
    model = CrossEncoderReranker(cross_encoder_dir, max_length=256, batch_size=4)
    reranker = LongContextReranker(model)
    query = "refund window for EU customers"
    hits = [
        _hit("policy", 0, "Refunds are accepted for 30 days.", 0.9),
        _hit("faq", 0, "Shipping takes a week.", 0.8),
        _hit("policy", 1, "EU customers get 14 extra days.", 0.7),
    ]

    reranked, joint = reranker.rerank_joint(query, hits, weight=1.0)

    policy = "Refunds are accepted for 30 days. EU customers get 14 extra days."
    assert joint.texts == [policy, "Shipping takes a week."]
    expected_scores = model.score(query, joint.texts)[joint.of_hit]
    expected = blend_and_sort(hits, expected_scores, 1.0)
    assert [h.chunk.id for h in reranked] == [h.chunk.id for h in expected]
    assert [h.score for h in reranked] == pytest.approx([h.score for h in expected], abs=1e-6)
    by_id = {h.chunk.id: h.score for h in reranked}
    assert by_id["policy#0"] == by_id["policy#1"]  # one joint passage, one score
    assert {h.chunk.text for h in reranked} == {h.chunk.text for h in hits}  # chunks come back unchanged


def test_the_budget_leaves_room_for_the_query_and_a_query_that_fills_it_is_an_error(
    cross_encoder_dir: Path,
) -> None:
    model = CrossEncoderReranker(cross_encoder_dir, max_length=32, batch_size=4)
    reranker = LongContextReranker(model)
    long_query = " ".join(["refund"] * 40)
    with pytest.raises(ValueError, match="no room"):
        reranker.rerank(long_query, [_hit("a", 0, "text")])
    hits = [_hit("a", i, "refunds are accepted within thirty days of delivery") for i in range(4)]
    joint = reranker.passages("refund", hits)
    for text in joint.texts:
        assert reranker.count("refund") + reranker.count(text) + 3 <= 32
    assert np.all(np.asarray(joint.of_hit) < len(joint.texts))
