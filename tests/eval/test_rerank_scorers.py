"""The two scorers `ragline reranker eval` chooses between read candidates as the query-time rerank modes do:
isolated scores equal the cross-encoder's own, and a joint passage is scored once for every candidate in it."""

from __future__ import annotations

import numpy as np

from eval.rerank_selection import isolated_scorer, joint_scorer
from retrieval.long_rerank import LongContextReranker
from retrieval.rerank import CrossEncoderReranker
from retrieval.types import Chunk, Hit

QUERY = "How long do EU customers have to request a refund?"


def _hit(doc: str, position: int, text: str) -> Hit:
    return Hit(Chunk(f"{doc}#{position}", doc, text, {"chunk_index": position}), 1.0, "fusion")


def test_isolated_is_the_cross_encoders_score_and_separate_documents_score_alone(
    reranker: CrossEncoderReranker,
) -> None:
    hits = [
        _hit("policy", 0, "EU customers may ask for a refund within 30 days of delivery."),
        _hit("shipping", 0, "Parcels to the EU leave the warehouse on weekdays."),
        _hit("faq", 3, "Refunds are paid to the original card."),
    ]
    isolated = isolated_scorer(reranker)(QUERY, hits)
    assert np.allclose(isolated, reranker.score(QUERY, [h.chunk.text for h in hits]))
    joint = joint_scorer(LongContextReranker(reranker))(QUERY, hits)  # no two hits share a document
    assert np.allclose(joint, isolated, atol=1e-6)


def test_neighbours_of_one_document_share_their_joint_score(reranker: CrossEncoderReranker) -> None:
    hits = [
        _hit("policy", 1, "It is 30 days from delivery."),
        _hit("other", 0, "Unrelated text about parcels."),
        _hit("policy", 0, "EU customers may request a refund."),
    ]
    long = LongContextReranker(reranker)
    scores = joint_scorer(long)(QUERY, hits)
    joint = long.passages(QUERY, hits)
    assert joint.of_hit[0] == joint.of_hit[2] != joint.of_hit[1]  # both policy chunks read in one passage
    assert "EU customers may request a refund. It is 30 days" in joint.texts[joint.of_hit[0]]
    assert scores[0] == scores[2]
    assert np.isclose(scores[1], reranker.score(QUERY, ["Unrelated text about parcels."])[0], atol=1e-6)


def test_a_shallower_depth_reuses_the_isolated_scores_without_a_model_pass(reranker: CrossEncoderReranker) -> None:
    hits = [_hit("policy", i, f"Refund rule number {i}: within {10 * i} days.") for i in range(4)]
    scorer = isolated_scorer(reranker)
    scored: list[int] = []
    score = reranker.score
    reranker.score = lambda query, texts: scored.append(len(texts)) or score(query, texts)  # type: ignore[method-assign]
    try:
        deep = scorer(QUERY, hits)
        shallow = scorer(QUERY, hits[:2])
        other = scorer("Which parcels leave on weekdays?", hits[:2])
    finally:
        del reranker.score  # the fixture is shared: back to the class's method
    assert scored == [4, 2]  # the top 2 of the same query cost nothing; another query is scored anew
    assert np.array_equal(shallow, deep[:2]) and not np.allclose(other, shallow)
