"""NQ-Open for the context experiments: loading, the ingested corpus, answer containment."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from eval.experiments.nq import answer_contained, load_nq, nq_corpus


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
def test_answer_contained_finds_any_normalised_answer(output: str, answers: list[str], expected: bool) -> None:
    assert answer_contained(output, answers) is expected


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
