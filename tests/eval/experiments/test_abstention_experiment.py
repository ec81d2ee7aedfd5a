"""The abstention cut: the balanced cut, the safe cut, the suggested cut and the score spread."""

from __future__ import annotations

import pytest

from eval.experiments.abstention import (
    abstained_share,
    answerability_table,
    best_threshold,
    highest_safe_threshold,
    score_summary,
    suggest_threshold,
)


def test_threshold_separates_present_from_withheld_scores() -> None:
    cut = best_threshold([0.7, 0.8, 0.65, 0.4], [0.3, 0.35, 0.5, 0.2])
    # 0.4 and 0.65 tie on balanced accuracy (0.875); the lower cut wins, answering rather than abstaining
    assert cut["threshold"] == 0.4 and cut["answered_present"] == 1.0 and cut["abstained_withheld"] == 0.75


def test_safe_threshold_refuses_at_most_the_allowed_share_of_answerable_questions() -> None:
    scores = [0.338, 0.394, 0.46, 0.5, 0.55, 0.6, 0.62, 0.7, 0.72, 0.75]
    assert highest_safe_threshold(scores, 0.0) == 0.33  # on the 0.01 grid, at or below the lowest score
    assert abstained_share(scores, highest_safe_threshold(scores, 0.0)) == 0.0
    assert highest_safe_threshold(scores, 0.1) == 0.39  # one of ten may fall below
    assert abstained_share(scores, 0.39) == 0.1
    with pytest.raises(ValueError, match="no answerable scores"):
        highest_safe_threshold([], 0.0)


def test_suggested_threshold_sits_in_the_gap_above_off_topic_scores() -> None:
    answerable = [[0.3377, 0.5, 0.7], [0.3432, 0.6]]
    assert suggest_threshold(answerable, [0.08, 0.13, 0.2117]) == 0.27  # middle of 0.2117 .. 0.33
    assert suggest_threshold(answerable, [0.4]) == 0.33  # no gap: the safe cut stands
    assert suggest_threshold(answerable, []) == 0.33


def test_score_summary_reports_the_spread() -> None:
    summary = score_summary([0.1 * i for i in range(1, 11)])
    assert summary["n"] == 10 and summary["min"] == 0.1 and summary["max"] == 1.0 and summary["median"] == 0.55
    assert score_summary([])["n"] == 0


def test_answerability_cuts_count_gate_refusals_at_every_cut() -> None:
    results = [
        {"withheld": False, "abstained": False, "p_yes": 0.8, "answer_contained": True},
        {"withheld": False, "abstained": True, "p_yes": 0.9, "answer_contained": False},
        {"withheld": True, "abstained": False, "p_yes": 0.25, "answer_contained": False},
        {"withheld": True, "abstained": False, "p_yes": None, "answer_contained": False},
    ]
    table = {row["p_yes cut"]: row for row in answerability_table(results)}
    assert table[0.1] == {
        "p_yes cut": 0.1,
        "withheld: I don't know": 0.0,
        "present: refused": 0.5,
        "present: correct": 0.5,
    }
    assert table[0.3]["withheld: I don't know"] == 0.5  # an unreadable judgement is never refused
    assert table[0.9] == {
        "p_yes cut": 0.9,
        "withheld: I don't know": 0.5,
        "present: refused": 1.0,
        "present: correct": 0.0,
    }
