import pytest

from eval.retrieval_quality import Candidates, best_alpha, evaluate_variants, format_table, standard_variants
from retrieval.types import Chunk, Hit


def _hits(doc_ids: list[str], scores: list[float], stage: str) -> list[Hit]:
    return [
        Hit(Chunk(id=f"{d}#{i}", doc_id=d, text=d), s, stage)
        for i, (d, s) in enumerate(zip(doc_ids, scores, strict=True))
    ]


@pytest.fixture
def candidates() -> Candidates:
    found = Candidates()
    # q1: BM25 finds the relevant doc first; dense ranks it third. q2: the other way round.
    found.lists["q1"] = {
        "bm25": _hits(["a", "b", "c"], [9, 5, 1], "bm25"),
        "dense": _hits(["c", "b", "a"], [0.9, 0.8, 0.7], "dense"),
    }
    found.lists["q2"] = {
        "bm25": _hits(["x", "y", "z"], [3, 2, 1], "bm25"),
        "dense": _hits(["z", "x", "y"], [0.9, 0.5, 0.1], "dense"),
    }
    return found


def test_variants_are_scored_from_the_same_candidates(candidates: Candidates) -> None:
    qrels = {"q1": {"a": 1}, "q2": {"z": 1}}
    results = evaluate_variants(candidates, qrels, standard_variants(60, alphas=[0.0, 1.0]), ks=(1,))
    assert results["bm25"]["p@1"] == 0.5 and results["dense"]["p@1"] == 0.5
    assert results["convex(α=0.00)"]["p@1"] == results["bm25"]["p@1"]
    assert results["convex(α=1.00)"]["p@1"] == results["dense"]["p@1"]
    assert results["rrf(k=60)"]["queries"] == 2


def test_best_alpha_prefers_the_smaller_on_ties() -> None:
    results = {"convex(α=0.30)": {"ndcg@10": 0.7}, "convex(α=0.10)": {"ndcg@10": 0.7}, "rrf(k=60)": {"ndcg@10": 0.9}}
    assert best_alpha(results) == (0.1, 0.7)
    with pytest.raises(ValueError, match="no convex"):
        best_alpha({"rrf(k=60)": {"ndcg@10": 0.9}})


def test_table_lists_every_variant() -> None:
    table = format_table({"bm25": {"ndcg@10": 0.5}, "dense": {"ndcg@10": 0.25}}, ["ndcg@10"])
    assert "bm25" in table and "0.2500" in table


def test_per_query_ndcg_averages_to_the_reported_mean(candidates: Candidates) -> None:
    from eval.retrieval_quality import per_query_ndcg

    qrels = {"q1": {"a": 1}, "q2": {"z": 1}, "q3": {"n": 0}}  # q3: nothing relevant, left out as in the means
    variants = standard_variants(60, alphas=[0.0, 1.0])
    scores = per_query_ndcg(candidates, qrels, variants, k=10)
    means = evaluate_variants(candidates, qrels, variants, ks=(10,))
    for name in variants:
        assert set(scores[name]) == {"q1", "q2"}
        assert sum(scores[name].values()) / 2 == pytest.approx(means[name]["ndcg@10"], abs=1e-6)
    assert scores["bm25"]["q1"] == 1.0 and scores["dense"]["q1"] == pytest.approx(0.5)  # a at rank 3: 1/log2(4)
