"""NQ-Open (the lost-in-the-middle oracle set): questions, passages, the corpus an experiment ingests, and the
answer-containment check the lost-in-the-middle study scores with.

Containment, not exact match: an answer counts when any accepted answer, normalised (lowercase, no punctuation or
articles), occurs anywhere in the normalised output, even inside a longer word. ``eval.metrics.contains_answer``
matches whole tokens only and refuses empty answer lists, so it is a different metric; experiments that compare with
the study's numbers need this one.
"""

from __future__ import annotations

import gzip
import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
NQ_COLLECTION = "nq-open-oracle"


@dataclass(frozen=True)
class NQQuestion:
    id: str
    question: str
    answers: list[str]
    gold: str


@dataclass(frozen=True)
class Passage:
    id: str
    title: str
    text: str


def load_nq(folder: Path, limit: int | None = None) -> tuple[list[NQQuestion], dict[str, Passage]]:
    """Questions (first ``limit``) and all passages of an ``nq-open-oracle`` folder."""
    questions_path, passages_path = folder / "dev_questions.jsonl", folder / "passages.jsonl.gz"
    for path in (questions_path, passages_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: point --data at the nq-open-oracle folder")
    with questions_path.open(encoding="utf-8") as lines:
        questions = [
            NQQuestion(row["id"], row["question"], list(row["answers"]), row["gold_passage"])
            for row in map(json.loads, lines)
        ]
    with gzip.open(passages_path, "rt", encoding="utf-8") as lines:
        passages = {row["_id"]: Passage(row["_id"], row["title"], row["text"]) for row in map(json.loads, lines)}
    missing = [q.id for q in questions if q.gold not in passages]
    if missing:
        raise ValueError(f"{len(missing)} questions name a gold passage that is not in {passages_path}: {missing[:3]}")
    return questions[:limit] if limit else questions, passages


def nq_corpus(questions: list[NQQuestion], passages: dict[str, Passage], extra: int) -> dict[str, Passage]:
    """The gold passages of every question plus the first ``extra`` others: all 2,600 take half an hour to embed
    on a busy 2-core host, and retrieval over the golds of other questions still yields hard distractors."""
    golds = {q.gold for q in questions}
    others = [pid for pid in passages if pid not in golds][:extra]
    return {pid: passages[pid] for pid in (*sorted(golds), *others)}


def load_nq_experiment(
    folder: Path, limit: int | None, extra: int = 300
) -> tuple[list[NQQuestion], dict[str, Passage]]:
    """The first ``limit`` questions (all for None) and the corpus an experiment ingests: the gold passages of every
    question plus ``extra`` others (``nq_corpus``)."""
    questions, passages = load_nq(folder)
    return questions[:limit] if limit else questions, nq_corpus(questions, passages, extra)


def normalize(text: str) -> str:
    """Lowercase, ASCII punctuation removed, articles dropped, whitespace collapsed."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def answer_contained(output: str, answers: Sequence[str]) -> bool:
    """Any accepted answer, normalised, occurs in the normalised output (as a substring)."""
    normalised = normalize(output)
    return any(normalize(answer) and normalize(answer) in normalised for answer in answers)
