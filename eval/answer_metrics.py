"""Per-answer metrics for QA evaluation: SQuAD exact match, SQuAD token F1, answer containment and abstention.

Each key an answer is scored under says what it computes, and ``ANSWER_METRICS`` defines every key in one sentence
(the HTML report prints those definitions under its metrics table). EM, F1 and containment are the SQuAD /
NQ-open definitions from ``eval.metrics`` (shared with the rest of the
evaluation code so every report normalizes answers the same way). Abstention is scored separately: a model that
says "I don't know" is neither right nor wrong on the facts, and the rate at which it abstains is a property of
the pipeline that must be visible on its own (a compression setting that doubles abstentions looks like a drop in
EM otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from eval.metrics import contains_answer, exact_match, token_f1

__all__ = ["ANSWER_METRICS", "abstained", "answer_scores"]

ANSWER_METRICS: dict[str, str] = {
    "exact_match": "SQuAD exact match: the normalized answer equals a normalized gold answer (1 or 0).",
    "token_f1": "SQuAD token F1 between the normalized answer and the best-matching gold answer.",
    "contains": "A normalized gold answer occurs in the normalized answer as whole tokens (NQ-open accuracy for "
    "long answers; not exact match).",
    "abstained": 'The pipeline declined to answer: an abstention gate in the trace, or an "I don\'t know" reply.',
    "abstained_answerable": "Abstained on a question with gold answers: a false refusal (lower is better).",
    "abstained_unanswerable": "Abstained on a question without gold answers: the right behaviour (higher is better).",
}
"""What each answer score computes, by the key it is stored under in ``results.jsonl`` and the report."""

_ABSTAIN = re.compile(
    r"\b(i\s+(?:do\s+not|don'?t|dont)\s+know"
    r"|(?:the\s+)?sources?\s+do(?:es)?\s+not\s+(?:contain|provide|mention|say)"
    r"|i\s+(?:cannot|can'?t|am\s+unable\s+to)\s+(?:answer|find))\b",
    re.IGNORECASE,
)


def abstained(answer: str, trace: Mapping[str, Any] | None = None) -> bool:
    """True when the pipeline declined to answer.

    Either an abstention stage said so in the trace (a gate, ``abstain`` or ``answerable``, with ``abstain: true``, or
    ``abstained: true`` on any entry), or the text is an "I don't know" style refusal, which the system prompt asks
    the model to give when the sources lack the answer. Curly apostrophes are folded first: small models emit both.
    """
    for stage in (trace or {}).get("stages", []):
        if not isinstance(stage, Mapping):
            continue
        if stage.get("abstained") is True or stage.get("abstain") is True:
            return True
    return bool(_ABSTAIN.search(answer.replace("\u2019", "'")))


def answer_scores(answer: str, answers: Sequence[str], trace: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Exact match, token F1 and containment against the gold ``answers`` (max over them), plus abstention as 0/1;
    the keys are those of ``ANSWER_METRICS``.

    Without gold answers only abstention is defined; the other keys are left out rather than scored as 0. A
    question without answers is one the corpus cannot answer, so abstention is also split: on unanswerable
    questions it is the right behaviour (higher is better), on answerable ones a false refusal (lower is better).
    """
    refused = float(abstained(answer, trace))
    scores: dict[str, float] = {"abstained": refused}
    scores["abstained_answerable" if answers else "abstained_unanswerable"] = refused
    if answers:
        scores.update(
            exact_match=exact_match(answer, answers),
            token_f1=token_f1(answer, answers),
            contains=contains_answer(answer, answers),
        )
    return scores
