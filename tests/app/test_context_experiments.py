"""The building blocks of ``ragline eval position|compression|abstention``: data, exact match, the abstention cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.context_commands import nq_corpus
from eval.context_experiments import best_threshold, exact_match, load_nq, place, positions

NQ = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nq-open-oracle"


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


@pytest.mark.skipif(not NQ.is_dir(), reason="the shared NQ-Open folder is not on this machine")
def test_nq_loads_and_the_corpus_keeps_every_gold_passage() -> None:
    questions, passages = load_nq(NQ)
    assert len(questions) == 531 and len(passages) == 2600
    corpus = nq_corpus(questions, passages, extra=10)
    assert {q.gold for q in questions} <= set(corpus) and len(corpus) == len({q.gold for q in questions}) + 10


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nq-open-oracle folder"):
        load_nq(tmp_path)
