import pytest

from retrieval.fusion import ReciprocalRankFusion
from retrieval.types import Chunk, Hit


def _hits(ids: str, stage: str) -> list[Hit]:
    return [Hit(Chunk(id=i, doc_id=i, text=i), 1.0, stage) for i in ids]


def test_rrf_rewards_agreement_between_lists() -> None:
    fused = ReciprocalRankFusion(k=60).fuse([_hits("abc", "bm25"), _hits("cab", "dense")])
    assert [h.chunk.id for h in fused] == ["a", "c", "b"]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert all(h.stage == "fused" for h in fused)


def test_rrf_keeps_items_found_by_one_list() -> None:
    fused = ReciprocalRankFusion(k=1).fuse([_hits("a", "bm25"), _hits("b", "dense"), []])
    assert {h.chunk.id for h in fused} == {"a", "b"}


def test_rrf_rejects_bad_k() -> None:
    with pytest.raises(ValueError, match="k must be positive"):
        ReciprocalRankFusion(k=0)
