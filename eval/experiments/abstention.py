"""Where to set ``abstain_threshold``: the best dense cosine of answerable questions (NQ with its gold passage, the
sample QA set on the ``sample`` collection) against unanswerable ones (NQ with the gold withheld by a filter;
off-topic and on-topic-but-unanswered questions on the sample corpus), then the pipeline at the chosen cut.

The suggested cut refuses at most ``max_false_abstention`` of each answerable set and sits in the middle of the gap
down to the best off-topic score; the balanced-accuracy cut on held-out NQ questions is shown beside it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.answer_metrics import abstained
from eval.experiments.common import (
    ANSWER_TOKENS,
    format_table,
    run_concurrently,
    stage_entry,
    true_rate,
)
from eval.experiments.nq import NQ_COLLECTION, NQQuestion, answer_contained
from ingest.samples import SAMPLE_COLLECTION
from retrieval.protocols import AnswersQuestions, DenseSearch

ANSWERABILITY_CUTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SCORE = "best dense cosine (all-MiniLM-L6-v2)"
ANSWERABLE_GROUPS = ("nq gold present", "sample answerable")
SAMPLE_GROUPS = (
    ("answerable", "sample answerable"),
    ("unanswerable", "sample unanswerable"),
    ("off_topic", "sample off-topic"),
)


def best_threshold(present: Sequence[float], withheld: Sequence[float]) -> dict[str, float]:
    """The cut on the best retrieval score that best separates gold-present from gold-withheld questions.

    Balanced accuracy: the mean of the answered share with gold present and the abstained share without it.
    """
    best = {"threshold": 0.0, "balanced_accuracy": 0.5, "answered_present": 1.0, "abstained_withheld": 0.0}
    for cut in sorted({round(s, 3) for s in (*present, *withheld)}):
        answered = sum(s >= cut for s in present) / len(present)
        withheld_refused = sum(s < cut for s in withheld) / len(withheld)
        balanced = (answered + withheld_refused) / 2
        if balanced > best["balanced_accuracy"]:
            best = {
                "threshold": cut,
                "balanced_accuracy": round(balanced, 4),
                "answered_present": round(answered, 4),
                "abstained_withheld": round(withheld_refused, 4),
            }
    return best


def abstained_share(scores: Sequence[float], cut: float) -> float | None:
    """Share of questions whose best score falls below ``cut`` (those the gate would abstain on)."""
    return round(sum(s < cut for s in scores) / len(scores), 4) if scores else None


def highest_safe_threshold(answerable: Sequence[float], max_false_abstention: float, step: float = 0.01) -> float:
    """The highest cut, on a ``step`` grid, that abstains on at most ``max_false_abstention`` of answerable
    questions: the default should never cost a user an answer the documents hold, so the cut is set by the
    answerable scores alone, and what it catches of the unanswerable ones is measured, not optimised."""
    if not answerable:
        raise ValueError("no answerable scores to set a threshold from")
    if not 0 <= max_false_abstention < 1:
        raise ValueError(f"max_false_abstention must be in [0, 1), got {max_false_abstention}")
    ordered = sorted(answerable)
    allowed = int(max_false_abstention * len(ordered))  # questions that may fall below the cut
    ceiling = ordered[allowed]  # a cut at or below this keeps at most ``allowed`` below it
    return round(math.floor(ceiling / step + 1e-9) * step, 6)


def score_summary(scores: Sequence[float]) -> dict[str, float | int | None]:
    """Count, min, 10th percentile, median, 90th percentile and max of a score list."""
    if not scores:
        return {"n": 0, "min": None, "p10": None, "median": None, "p90": None, "max": None}
    ordered = sorted(scores)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

    return {
        "n": len(ordered),
        "min": round(ordered[0], 4),
        "p10": pick(0.1),
        "median": round(statistics.median(ordered), 4),
        "p90": pick(0.9),
        "max": round(ordered[-1], 4),
    }


def suggest_threshold(
    answerable: Sequence[Sequence[float]], off_topic: Sequence[float], max_false_abstention: float = 0.0
) -> float:
    """A default cut: the highest safe cut over every answerable set (``highest_safe_threshold``), lowered to the
    middle of the gap between it and the best off-topic score when there is such a gap. The middle keeps a margin on
    both sides for corpora and questions other than the ones measured; without a gap, the safe cut stands."""
    safe = min(highest_safe_threshold(scores, max_false_abstention) for scores in answerable)
    top = max(off_topic, default=None)
    if top is None or top >= safe:
        return safe
    return round(math.floor((top + safe) / 2 * 100 + 1e-9) / 100, 6)


def sample_kind(row: Mapping[str, Any]) -> str:
    """``answerable``, ``unanswerable`` or ``off_topic``: a sample question without a known kind is answerable."""
    kind = row.get("kind", "")
    return kind if kind in ("unanswerable", "off_topic") else "answerable"


@dataclass(frozen=True)
class AbstentionScores:
    """The best score of every question per group, the suggested and the balanced cut, and the share each cut of a
    grid would refuse in each group."""

    groups: dict[str, list[float]]
    max_false_abstention: float
    suggested: float
    balanced: dict[str, float]
    summary: list[dict[str, Any]]
    cuts: list[dict[str, Any]]

    def lines(self) -> list[str]:
        """The two tables and the two cuts, as printed."""
        balanced = self.balanced
        return [
            f"{SCORE} per question",
            format_table(self.summary),
            "\nshare abstained at each cut (answerable groups: false abstention)",
            format_table(self.cuts),
            f"\nsuggested abstain_threshold: {self.suggested} (≤ {self.max_false_abstention:.0%} false abstention on "
            "each answerable set, in the middle of the gap down to the best off-topic score)",
            f"balanced cut for {NQ_COLLECTION} alone: {balanced['threshold']} (refuses "
            f"{balanced['abstained_withheld']:.0%} with the gold withheld, answers {balanced['answered_present']:.0%} "
            f'with it present); to use it there: RAGLINE_ABSTAIN_THRESHOLDS=\'{{"{NQ_COLLECTION}": '
            f"{balanced['threshold']}}}'",
        ]


def _cut_note(cut: float, safe: float, balanced: Mapping[str, float]) -> str:
    notes = [name for name, value in (("suggested", safe), ("nq balanced", balanced["threshold"])) if value == cut]
    return ", ".join(notes)


def abstention_scores(
    index: DenseSearch,
    evaluated: list[NQQuestion],
    held_out: list[NQQuestion],
    sample_rows: list[dict[str, Any]],
    max_false_abstention: float = 0.0,
) -> AbstentionScores:
    """Scores every NQ question (``evaluated`` and ``held_out``, gold present and withheld) and every sample row on
    its collection; the balanced cut is set on ``held_out`` alone."""

    def best_score(collection: str, question: str, where: Mapping[str, Any] | None) -> float:
        hits = index.search_dense(collection, question, 1, where)
        return hits[0].score if hits else -1.0

    nq = [*evaluated, *held_out]
    groups: dict[str, list[float]] = {
        "nq gold present": [best_score(NQ_COLLECTION, q.question, None) for q in nq],
        "nq gold withheld": [best_score(NQ_COLLECTION, q.question, {"passage": {"$ne": q.gold}}) for q in nq],
    }
    for kind, label in SAMPLE_GROUPS:
        rows = [r for r in sample_rows if sample_kind(r) == kind]
        groups[label] = [best_score(SAMPLE_COLLECTION, r["question"], r.get("filters")) for r in rows]
    safe = suggest_threshold([groups[g] for g in ANSWERABLE_GROUPS], groups["sample off-topic"], max_false_abstention)
    limit = len(evaluated)
    balanced = best_threshold(groups["nq gold present"][limit:], groups["nq gold withheld"][limit:])
    cuts = sorted({safe, balanced["threshold"], 0.2, 0.3, 0.35, 0.4, 0.5})
    return AbstentionScores(
        groups=groups,
        max_false_abstention=max_false_abstention,
        suggested=safe,
        balanced=balanced,
        summary=[{"group": g, **score_summary(v)} for g, v in groups.items()],
        cuts=[
            {
                "cut": cut,
                **{g: abstained_share(v, cut) for g, v in groups.items()},
                "note": _cut_note(cut, safe, balanced),
            }
            for cut in cuts
        ],
    )


def answerability_table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per P(yes) cut: share of gold-withheld questions that would say "I don't know", share of gold-present ones
    refused, and share of gold-present ones answered correctly (not refused and the answer contained). A question
    the cosine gate already refused counts as refused at every cut; an unreadable judgement (no yes/no) is never
    refused."""

    def refused(row: dict[str, Any], cut: float) -> bool:
        return bool(row["abstained"]) or (row.get("p_yes") is not None and row["p_yes"] < cut)

    present = [r for r in results if not r["withheld"]]
    withheld = [r for r in results if r["withheld"]]
    return [
        {
            "p_yes cut": cut,
            "withheld: I don't know": true_rate([refused(r, cut) for r in withheld]),
            "present: refused": true_rate([refused(r, cut) for r in present]),
            "present: correct": true_rate([not refused(r, cut) and bool(r["answer_contained"]) for r in present]),
        }
        for cut in ANSWERABILITY_CUTS
    ]


@dataclass(frozen=True)
class AbstentionRuns:
    """The pipeline at ``threshold`` on each question with its gold passage present and withheld."""

    threshold: float
    questions: int
    results: list[dict[str, Any]]
    per_question: list[dict[str, Any]]
    answerability: list[dict[str, Any]] | None

    def lines(self) -> list[str]:
        lines = [f"\npipeline at abstain_threshold {self.threshold} on {self.questions} NQ questions"]
        lines.append(format_table(self.results))
        if self.answerability is not None:
            lines.append("\nanswerability check: at each P(yes) cut (on top of the cosine gate)")
            lines.append(format_table(self.answerability))
        return lines

    def report(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "threshold": self.threshold,
            "questions": self.questions,
            "results": self.results,
            "per_question": self.per_question,
        }
        if self.answerability is not None:
            payload["answerability"] = self.answerability
        return payload


def abstention_runs(
    pipeline: AnswersQuestions, evaluated: list[NQQuestion], cut: float, workers: int, llm_check: bool = False
) -> AbstentionRuns:
    """The pipeline at ``cut`` on each question with its gold passage present and withheld. With ``llm_check``
    the answerability judgement is recorded on every question (threshold 0: it never abstains here), so that the
    trade-off at every cut can be read off afterwards from one run."""
    options: dict[str, Any] = {"abstain_threshold": cut, "abstain_thresholds": {}, "max_answer_tokens": ANSWER_TOKENS}
    if llm_check:
        options.update(answerability_check=True, answerability_threshold=0.0)

    def run(job: tuple[NQQuestion, bool]) -> dict[str, Any]:
        q, hide = job
        started = time.perf_counter()
        answer = pipeline.run(
            q.question, NQ_COLLECTION, {"passage": {"$ne": q.gold}} if hide else None, options=options
        )
        ms = (time.perf_counter() - started) * 1000
        gate = stage_entry(answer.trace, "abstain")
        return {
            "id": q.id,
            "withheld": hide,
            "abstained": bool(gate.get("abstain")),
            "score": gate.get("score"),
            "p_yes": stage_entry(answer.trace, "answerable").get("p_yes"),
            "dont_know": abstained(answer.text, answer.trace),
            "answer_contained": answer_contained(answer.text, q.answers),
            "citations": len(answer.citations),
            "ms": round(ms),
        }

    results = run_concurrently(run, [(q, hide) for q in evaluated for hide in (False, True)], workers)
    rows = []
    for condition, hide in (("gold present", False), ("gold withheld", True)):
        group = [r for r in results if r["withheld"] is hide]
        rows.append(
            {
                "condition": condition,
                "abstained": true_rate([r["abstained"] for r in group]),
                "I don't know (gate or model)": true_rate([r["dont_know"] for r in group]),
                "accuracy_contains_all": true_rate([r["answer_contained"] for r in group]),
                "accuracy_contains_answered": true_rate([r["answer_contained"] for r in group if not r["abstained"]]),
            }
        )
    return AbstentionRuns(cut, len(evaluated), rows, results, answerability_table(results) if llm_check else None)


def abstention_report(
    scores: AbstentionScores,
    runs: AbstentionRuns | None,
    *,
    data: Path,
    sample_qa: Path,
    offtopic: Path,
    corpus_passages: int,
) -> dict[str, Any]:
    """The JSON report: where the questions came from, the scores and cuts, and the pipeline runs if any."""
    payload: dict[str, Any] = {
        "data": str(data),
        "sample_qa": str(sample_qa),
        "offtopic": str(offtopic),
        "nq_questions": len(scores.groups["nq gold present"]),
        "nq_corpus_passages": corpus_passages,
        "score": SCORE,
        "max_false_abstention": scores.max_false_abstention,
        "suggested_threshold": scores.suggested,
        "balanced_cut_nq": scores.balanced,
        "summary": scores.summary,
        "cuts": scores.cuts,
        "scores": scores.groups,
    }
    if runs is not None:
        payload["pipeline"] = runs.report()
    return payload
