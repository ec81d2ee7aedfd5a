"""The building blocks of ``ragline eval position|compression|abstention``: data, exact match, the abstention cut."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from app.context_commands import nq_corpus
from eval.context_experiments import (
    abstained_share,
    best_threshold,
    exact_match,
    highest_safe_threshold,
    load_nq,
    paired_difference,
    place,
    positions,
    score_summary,
    suggest_threshold,
)


@pytest.mark.parametrize(
    ("output", "answers", "expected"),
    [
        ("The first prize went to Wilhelm Conrad Röntgen [1].", ["Wilhelm Conrad Röntgen"], True),
        ("It is played at old trafford.", ["Old Trafford"], True),
        ("The rate is 20 %.", ["20%"], True),
        ("I don't know.", ["Spike"], False),
        ("Anything", [""], False),
    ],
)
def test_exact_match_finds_any_normalised_answer(output: str, answers: list[str], expected: bool) -> None:
    assert exact_match(output, answers) is expected


def test_gold_is_placed_first_middle_and_last() -> None:
    slots = positions(5)
    assert slots == {"first": 0, "middle": 2, "last": 4}
    assert [place("g", ["a", "b", "c", "d"], slot).index("g") for slot in slots.values()] == [0, 2, 4]


def test_threshold_separates_present_from_withheld_scores() -> None:
    cut = best_threshold([0.7, 0.8, 0.65, 0.4], [0.3, 0.35, 0.5, 0.2])
    # 0.4 and 0.65 tie on balanced accuracy (0.875); the lower cut wins, answering rather than abstaining
    assert cut["threshold"] == 0.4 and cut["answered_present"] == 1.0 and cut["abstained_withheld"] == 0.75


def _nq_folder(folder: Path, questions: int, passages: int) -> Path:
    """A small folder in the nq-open-oracle format: each question's gold passage plus unrelated ones."""
    with (folder / "dev_questions.jsonl").open("w", encoding="utf-8") as out:
        for i in range(questions):
            out.write(
                json.dumps({"id": f"q{i}", "question": f"question {i}", "answers": [f"a{i}"], "gold_passage": f"p{i}"})
            )
            out.write("\n")
    with gzip.open(folder / "passages.jsonl.gz", "wt", encoding="utf-8") as out:
        for i in range(passages):
            out.write(json.dumps({"_id": f"p{i}", "title": f"title {i}", "text": f"passage {i}"}) + "\n")
    return folder


def test_nq_loads_and_the_corpus_keeps_every_gold_passage(tmp_path: Path) -> None:
    questions, passages = load_nq(_nq_folder(tmp_path, questions=5, passages=40))
    assert len(questions) == 5 and len(passages) == 40
    corpus = nq_corpus(questions, passages, extra=10)
    assert {q.gold for q in questions} <= set(corpus) and len(corpus) == len({q.gold for q in questions}) + 10


def test_a_gold_passage_missing_from_the_pool_is_named(tmp_path: Path) -> None:
    _nq_folder(tmp_path, questions=5, passages=3)
    with pytest.raises(ValueError, match="2 questions name a gold passage"):
        load_nq(tmp_path)


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nq-open-oracle folder"):
        load_nq(tmp_path)


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


def test_paired_difference_counts_flips_and_brackets_the_mean() -> None:
    treated = [True] * 18 + [False] * 2 + [True] * 1 + [False] * 19
    baseline = [True] * 18 + [True] * 2 + [False] * 1 + [False] * 19
    result = paired_difference(treated, baseline)
    assert result["questions"] == 40
    assert (result["only_treated_right"], result["only_baseline_right"]) == (1, 2)
    assert result["difference_points"] == -2.5
    assert -100 <= result["ci95_low_points"] <= -2.5 <= result["ci95_high_points"] <= 100
    assert paired_difference([True, False], [True, False])["difference_points"] == 0.0
    with pytest.raises(ValueError, match="equally long"):
        paired_difference([True], [True, False])
