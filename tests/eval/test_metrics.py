"""Retrieval metrics checked against reference values; answer metrics against SQuAD/NQ-open conventions.

The REFERENCE numbers were produced by pytrec_eval-terrier 0.5.11 (measures ndcg_cut.1,3,5,10, P.1,5,10,
recall.1,5,10, recip_rank) on QRELS/RUNS below, each run given strictly decreasing scores (len(run) - rank) so
its order is unambiguous; ranx 0.3.21 (ndcg@k, mrr@k, precision@5, recall@5) gave the same values.
"""

from __future__ import annotations

import math

import pytest

from eval.metrics import (
    contains_answer,
    evaluate_retrieval,
    exact_match,
    ndcg_at_k,
    normalize_answer,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    token_f1,
)

QRELS: dict[str, dict[str, int]] = {
    "q1": {"d1": 2, "d2": 1, "d3": 1},
    "q2": {"d4": 1},
    "q3": {"d5": 2, "d6": 1, "d7": 0},
    "q5": {
        **{"d1": 1, "d2": 2, "d3": 0, "d4": 1, "d5": 2, "d6": 1},
        **{"d7": 1, "d8": 2, "d9": 1, "d10": 1, "d11": 2, "d12": 1},
    },
}
RUNS: dict[str, list[str]] = {
    "q1": ["d3", "x1", "d1", "d2", "x2", "x3", "x4", "x5", "x6", "x7"],
    "q2": ["x1", "x2", "x3", "x4", "x5", "x6", "d4", "x7"],
    "q3": ["d6", "d7", "d5", "x1"],  # d7 is judged with relevance 0: not relevant
    "q5": ["x1", "d12", "d3", "d2", "x2", "d9", "d8", "x3", "d1", "x4", "d11", "d5"],  # 11 relevant, more than k
}
# pytrec_eval-terrier 0.5.11 output (see module docstring).
REFERENCE: dict[str, dict[str, float]] = {
    "q1": {
        "ndcg@1": 0.5, "ndcg@3": 0.6387878864795979, "ndcg@5": 0.7763433706236033, "ndcg@10": 0.7763433706236033,
        "p@1": 1.0, "p@5": 0.6, "p@10": 0.3,
        "recall@1": 0.3333333333333333, "recall@5": 1.0, "recall@10": 1.0,
        "rr": 1.0,
    },
    "q2": {
        "ndcg@1": 0.0, "ndcg@3": 0.0, "ndcg@5": 0.0, "ndcg@10": 0.3333333333333333,
        "p@1": 0.0, "p@5": 0.0, "p@10": 0.1,
        "recall@1": 0.0, "recall@5": 0.0, "recall@10": 1.0,
        "rr": 0.14285714285714285,
    },
    "q3": {
        "ndcg@1": 0.5, "ndcg@3": 0.7601875334318685, "ndcg@5": 0.7601875334318685, "ndcg@10": 0.7601875334318685,
        "p@1": 1.0, "p@5": 0.4, "p@10": 0.2,
        "recall@1": 0.5, "recall@5": 1.0, "recall@10": 1.0,
        "rr": 1.0,
    },
    "q5": {
        "ndcg@1": 0.0, "ndcg@3": 0.1480409554829326, "ndcg@5": 0.27082852073795854, "ndcg@10": 0.39635764428133546,
        "p@1": 0.0, "p@5": 0.4, "p@10": 0.5,
        "recall@1": 0.0, "recall@5": 0.18181818181818182, "recall@10": 0.45454545454545453,
        "rr": 0.5,
    },
}  # fmt: skip
# ranx 0.3.21 mrr@5 (pytrec_eval's recip_rank has no cutoff): q2's only hit is at rank 7.
MRR_AT_5 = {"q1": 1.0, "q2": 0.0, "q3": 1.0, "q5": 0.5}

CASES = [(qid, k) for qid in RUNS for k in (1, 3, 5, 10)]


@pytest.mark.parametrize(("qid", "k"), CASES)
def test_ndcg_matches_pytrec_eval(qid: str, k: int) -> None:
    assert ndcg_at_k(RUNS[qid], QRELS[qid], k) == pytest.approx(REFERENCE[qid][f"ndcg@{k}"], abs=1e-12)


@pytest.mark.parametrize(("qid", "k"), [(qid, k) for qid in RUNS for k in (1, 5, 10)])
def test_precision_and_recall_match_pytrec_eval(qid: str, k: int) -> None:
    assert precision_at_k(RUNS[qid], QRELS[qid], k) == pytest.approx(REFERENCE[qid][f"p@{k}"], abs=1e-12)
    assert recall_at_k(RUNS[qid], QRELS[qid], k) == pytest.approx(REFERENCE[qid][f"recall@{k}"], abs=1e-12)


@pytest.mark.parametrize("qid", list(RUNS))
def test_reciprocal_rank_matches_references(qid: str) -> None:
    assert reciprocal_rank(RUNS[qid], QRELS[qid]) == pytest.approx(REFERENCE[qid]["rr"], abs=1e-12)
    assert reciprocal_rank(RUNS[qid], QRELS[qid], k=5) == pytest.approx(MRR_AT_5[qid], abs=1e-12)


def test_ndcg_hand_derived_graded_case() -> None:
    # q1 at k=3: ranks hold d3 (rel 1), x1 (0), d1 (2) -> DCG = 1/log2(2) + 0 + 2/log2(4) = 1 + 1 = 2.
    # Ideal order 2,1,1 -> IDCG = 2/1 + 1/log2(3) + 1/log2(4) = 2.5 + 1/log2(3). nDCG = 2 / IDCG ~= 0.63879.
    expected = 2 / (2.5 + 1 / math.log2(3))
    assert ndcg_at_k(RUNS["q1"], QRELS["q1"], 3) == pytest.approx(expected)
    assert expected == pytest.approx(REFERENCE["q1"]["ndcg@3"])


def test_perfect_ranking_scores_one_even_with_more_relevant_than_k() -> None:
    ideal = sorted(QRELS["q5"], key=lambda doc: -QRELS["q5"][doc])
    for k in (1, 3, 5, 10, 20):
        assert ndcg_at_k(ideal, QRELS["q5"], k) == pytest.approx(1.0)


def test_duplicates_collapse_to_first_occurrence() -> None:
    # Chunks of one document share its id: the repeats must not count twice nor take rank positions.
    chunked = ["d3", "d3", "x1", "d1", "x1", "d1", "d2", "x2", "x3", "x4", "x5", "x6", "x7"]
    for k in (1, 3, 5, 10):
        assert ndcg_at_k(chunked, QRELS["q1"], k) == pytest.approx(REFERENCE["q1"][f"ndcg@{k}"])
    assert precision_at_k(chunked, QRELS["q1"], 5) == pytest.approx(0.6)
    assert precision_at_k(["d4", "d4", "d4"], QRELS["q2"], 3) == pytest.approx(1 / 3)
    assert recall_at_k(["x1", "x1", "x1", "d4"], QRELS["q2"], 2) == 1.0
    assert reciprocal_rank(["x1", "x1", "x1", "d4"], QRELS["q2"]) == 0.5


def test_short_or_empty_run() -> None:
    # The precision denominator stays k even if fewer docs were retrieved (trec_eval convention).
    assert precision_at_k(["d4"], QRELS["q2"], 10) == pytest.approx(0.1)
    assert ndcg_at_k([], QRELS["q2"], 10) == 0.0
    assert recall_at_k([], QRELS["q2"], 10) == 0.0
    assert reciprocal_rank([], QRELS["q2"]) == 0.0


@pytest.mark.parametrize("relevant", [{}, {"d1": 0}])
def test_query_without_relevant_docs_is_an_error(relevant: dict[str, int]) -> None:
    for fn in (precision_at_k, recall_at_k, ndcg_at_k, reciprocal_rank):
        with pytest.raises(ValueError, match="no relevant"):
            fn(["d1"], relevant, 5)


def test_invalid_k_is_an_error() -> None:
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k(["d1"], {"d1": 1}, 0)
    with pytest.raises(ValueError, match="k must be"):
        evaluate_retrieval({"q": ["d1"]}, {"q": {"d1": 1}}, ks=(5, 0))


def test_evaluate_retrieval_means_and_missing_queries() -> None:
    # q4 is judged but absent from the run: it counts as 0. "qx" is only in the run: ignored.
    # "q0" has only a zero-graded judgment: undefined metrics, left out of the mean.
    qrels = {**QRELS, "q4": {"d8": 1, "d9": 2}, "q0": {"d1": 0}}
    run = {**RUNS, "qx": ["d1"]}
    result = evaluate_retrieval(run, qrels, ks=(1, 5, 10))
    assert result["queries"] == 5
    for k in (1, 5, 10):
        for name in ("ndcg", "p", "recall"):
            expected = sum(REFERENCE[qid][f"{name}@{k}"] for qid in RUNS) / 5
            assert result[f"{name}@{k}"] == pytest.approx(expected, abs=1e-12), f"{name}@{k}"
    assert result["mrr@5"] == pytest.approx(sum(MRR_AT_5.values()) / 5)
    # ranx 0.3.21 mrr@10 per query: 1, 1/7, 1, 0.5.
    assert result["mrr@10"] == pytest.approx((1 + 1 / 7 + 1 + 0.5) / 5)
    assert set(result) == {f"{m}@{k}" for m in ("ndcg", "p", "recall", "mrr") for k in (1, 5, 10)} | {"queries"}


def test_evaluate_retrieval_without_judged_queries_is_an_error() -> None:
    with pytest.raises(ValueError, match="no query"):
        evaluate_retrieval({"q": ["d1"]}, {"q": {"d1": 0}})


# --- answers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  a   cat, an  apple; THE end. ", "cat apple end"),
        ("theater anthem", "theater anthem"),  # articles only as whole words
        ("U.S.A.", "usa"),
        ("", ""),
    ],
)
def test_normalize_answer(text: str, normalized: str) -> None:
    assert normalize_answer(text) == normalized


def test_exact_match_is_max_over_answers() -> None:
    assert exact_match("the Eiffel tower.", ["Louvre", "Eiffel Tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0


def test_token_f1() -> None:
    # pred {barack, obama} vs gold {obama}: P = 1/2, R = 1 -> F1 = 2/3.
    assert token_f1("Barack Obama", ["Obama"]) == pytest.approx(2 / 3)
    assert token_f1("Barack Obama", ["Obama", "barack obama"]) == 1.0
    # Tokens are matched by count: pred [cat, cat, sat] vs gold [cat] -> overlap 1, P = 1/3, R = 1 -> F1 = 1/2.
    assert token_f1("the cat cat sat", ["a cat"]) == pytest.approx(0.5)
    assert token_f1("dog", ["cat"]) == 0.0
    assert token_f1("the", ["a"]) == 1.0  # both normalize to nothing (SQuAD v2 convention)
    assert token_f1("the", ["cat"]) == 0.0


def test_contains_answer_matches_whole_tokens() -> None:
    long_answer = "According to the passage, it was built in 1889 by Gustave Eiffel's company."
    assert contains_answer(long_answer, ["1889"]) == 1.0
    assert contains_answer(long_answer, ["Gustave Eiffel's"]) == 1.0
    assert contains_answer(long_answer, ["1890", "Gustave  EIFFELS"]) == 1.0
    assert contains_answer("in 1999", ["1"]) == 0.0
    assert contains_answer("concatenate", ["cat"]) == 0.0
    assert contains_answer("anything", ["The"]) == 0.0  # empty after normalization never matches


@pytest.mark.parametrize("fn", [exact_match, token_f1, contains_answer])
def test_answer_metrics_reject_bad_answers(fn) -> None:
    with pytest.raises(ValueError, match="empty"):
        fn("x", [])
    with pytest.raises(TypeError, match="single string"):
        fn("x", "x")
