import pytest

from retrieval.fusion import ConvexFusion, ReciprocalRankFusion, make_fusion, min_max
from retrieval.types import Chunk, Hit


def _hits(ids: str, stage: str, scores: list[float] | None = None) -> list[Hit]:
    scores = scores or [1.0] * len(ids)
    return [Hit(Chunk(id=i, doc_id=i, text=i), s, stage) for i, s in zip(ids, scores, strict=True)]


def test_rrf_rewards_agreement_between_lists() -> None:
    fused = ReciprocalRankFusion(k=60).fuse({"bm25": _hits("abc", "bm25"), "dense": _hits("cab", "dense")})
    assert [h.chunk.id for h in fused] == ["a", "c", "b"]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert all(h.stage == "fused" for h in fused)


def test_rrf_keeps_items_found_by_one_list() -> None:
    fused = ReciprocalRankFusion(k=1).fuse({"bm25": _hits("a", "bm25"), "dense": _hits("b", "dense"), "other": []})
    assert {h.chunk.id for h in fused} == {"a", "b"}


def test_rrf_rejects_bad_k() -> None:
    with pytest.raises(ValueError, match="k must be positive"):
        ReciprocalRankFusion(k=0)


def test_min_max_maps_to_unit_interval() -> None:
    assert min_max(_hits("abc", "bm25", [10.0, 5.0, 0.0])) == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert min_max(_hits("ab", "bm25", [3.0, 3.0])) == {"a": 1.0, "b": 1.0}
    assert min_max([]) == {}


def test_convex_fusion_weights_normalised_scores() -> None:
    lists = {"bm25": _hits("ab", "bm25", [12.0, 2.0]), "dense": _hits("bc", "dense", [0.9, 0.5])}
    fused = ConvexFusion(alpha=0.25).fuse(lists)
    scores = {h.chunk.id: h.score for h in fused}
    assert scores == pytest.approx({"a": 0.75, "b": 0.25, "c": 0.0})
    assert next(h.chunk.id for h in ConvexFusion(alpha=1.0).fuse(lists)) == "b"


def test_convex_rejects_unknown_lists_and_bad_alpha() -> None:
    with pytest.raises(ValueError, match="alpha must be in"):
        ConvexFusion(alpha=1.5)
    with pytest.raises(ValueError, match="also"):
        ConvexFusion().fuse({"bm25": [], "rerank": []})


def test_make_fusion_by_name() -> None:
    assert make_fusion("rrf", rrf_k=10).describe() == {"method": "rrf", "k": 10}
    assert make_fusion("convex", alpha=0.3).describe() == {"method": "convex", "alpha": 0.3}
    with pytest.raises(ValueError, match="'rrf' or 'convex'"):
        make_fusion("sum")
