import os
import subprocess
import sys
from pathlib import Path

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


def _tied_lists() -> dict[str, list[Hit]]:
    """Ten hits only dense found and ten only BM25 found, each group with equal scores: twenty ties at 0.5."""
    dense = [Hit(Chunk(f"dense-{i}", f"d{i}", "t"), 0.9, "dense") for i in range(10)]
    bm25 = [Hit(Chunk(f"bm25-{i}", f"b{i}", "t"), 7.0, "bm25") for i in range(10)]
    return {"bm25": bm25, "dense": dense}


def test_convex_ties_keep_first_seen_order_in_every_process() -> None:
    """Ties are ordered by the dense list, then BM25's, not by string hashes, which each Python process
    randomises: two replicas must rank one query the same way."""
    fused = [h.chunk.id for h in ConvexFusion(0.5).fuse(_tied_lists())]
    assert fused == [f"dense-{i}" for i in range(10)] + [f"bm25-{i}" for i in range(10)]
    script = (
        "from retrieval.fusion import ConvexFusion; from tests.retrieval.test_fusion import _tied_lists;"
        "print(','.join(h.chunk.id for h in ConvexFusion(0.5).fuse(_tied_lists())))"
    )
    repo = Path(__file__).resolve().parents[2]
    for seed in ("1", "2", "3"):
        out = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": seed}, cwd=repo,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert out.strip().split(",") == fused
