"""Choose on one part, report on another: the winner is picked by `choose` alone and reported on `report`."""

from __future__ import annotations

import pytest

from eval.metrics import evaluate_retrieval
from eval.selection import choose_then_report, format_selection, per_query_ndcg

CHOOSE = ["c1", "c2", "c3"]
REPORT = ["r1", "r2", "r3"]


def _scores(choose: float, report: float) -> dict[str, float]:
    return {**dict.fromkeys(CHOOSE, choose), **dict.fromkeys(REPORT, report)}


def test_the_winner_is_best_on_choose_even_when_another_is_best_on_report() -> None:
    per_query = {"base": _scores(0.5, 0.5), "tuned": _scores(0.7, 0.49), "other": _scores(0.6, 0.8)}
    selection = choose_then_report("weight", per_query, "base", CHOOSE, REPORT)
    assert selection.chosen == "tuned"
    assert selection.report["tuned"] == pytest.approx(0.49)
    assert selection.choose_gain.mean == pytest.approx(0.2) and selection.report_gain.mean == pytest.approx(-0.01)
    lines = format_selection(selection)
    assert any("tuned" in line and "<- chosen" in line for line in lines)
    assert "report -1.0" in lines[-1]
    assert selection.as_dict()["table"]["other"] == {"choose": 0.6, "report": 0.8}


def test_ties_go_to_the_earlier_candidate() -> None:
    per_query = {"base": _scores(0.5, 0.5), "a": _scores(0.6, 0.1), "b": _scores(0.6, 0.9)}
    assert choose_then_report("x", per_query, "base", CHOOSE, REPORT).chosen == "a"


def test_overlapping_parts_or_missing_scores_are_refused() -> None:
    per_query = {"base": _scores(0.5, 0.5)}
    with pytest.raises(ValueError, match="share queries"):
        choose_then_report("x", per_query, "base", CHOOSE, ["c1"])
    with pytest.raises(ValueError, match="no score for 1 queries"):
        choose_then_report("x", {**per_query, "gap": {q: 1.0 for q in CHOOSE + REPORT[:2]}}, "base", CHOOSE, REPORT)
    with pytest.raises(ValueError, match="baseline"):
        choose_then_report("x", per_query, "missing", CHOOSE, REPORT)


def test_per_query_ndcg_averages_to_the_reported_mean() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 2}, "q3": {"d9": 1}}
    run = {"q1": ["d1", "d4"], "q2": ["d3", "d5", "d2"]}
    per_query = per_query_ndcg(run, qrels, 10)
    assert per_query["q3"] == 0.0 and per_query["q1"] == 1.0
    assert sum(per_query.values()) / 3 == pytest.approx(evaluate_retrieval(run, qrels, [10])["ndcg@10"])


def test_a_fixed_candidate_is_reported_whatever_choose_says() -> None:
    per_query = {"base": _scores(0.5, 0.5), "best_on_choose": _scores(0.9, 0.5), "settled": _scores(0.6, 0.7)}
    selection = choose_then_report("refit", per_query, "base", CHOOSE, REPORT, fixed="settled")
    assert selection.chosen == "settled" and selection.fixed
    assert selection.report_gain.mean == pytest.approx(0.2)
    lines = format_selection(selection)
    assert "fixed beforehand" in lines[0] and any("settled" in line and "<- fixed" in line for line in lines)
    assert selection.as_dict()["fixed"] is True
    with pytest.raises(ValueError, match="fixed candidate"):
        choose_then_report("refit", per_query, "base", CHOOSE, REPORT, fixed="unknown")
