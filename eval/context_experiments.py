"""Context experiments on NQ-Open (the lost-in-the-middle oracle set): position, edge positioning, compression,
abstention and the prefix cache.

This module holds the data handling, the metrics and the experiment loops; the language model and the pipeline
come in as plain callables (``eval`` never imports ``app``), and ``ragline eval position|compression|abstention|
prefix-cache`` wire them. Exact match follows the lost-in-the-middle study: an answer counts when any accepted
answer, normalised (lowercase, no punctuation or articles), appears in the normalised output.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
import statistics
import string
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


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


def normalize(text: str) -> str:
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def exact_match(output: str, answers: Sequence[str]) -> bool:
    """Any accepted answer, normalised, occurs in the normalised output."""
    normalised = normalize(output)
    return any(normalize(answer) and normalize(answer) in normalised for answer in answers)


SLOT_NAMES = ("first", "middle", "last")


def positions(k: int) -> dict[str, int]:
    """0-based slots of the gold passage among ``k``, by name (``SLOT_NAMES``)."""
    return dict(zip(SLOT_NAMES, (0, (k - 1) // 2, k - 1), strict=True))


def place(gold: Passage, distractors: Sequence[Passage], slot: int) -> list[Passage]:
    ordered = list(distractors)
    ordered.insert(slot, gold)
    return ordered


def run_concurrently(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> list[Any]:
    """``fn`` over ``items`` with ``workers`` requests in flight, so vLLM batches them; results in input order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def median_ms(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def em_rate(flags: Sequence[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def paired_difference(
    treated: Sequence[bool], baseline: Sequence[bool], resamples: int = 2000, seed: int = 13
) -> dict[str, float | int]:
    """Exact-match difference ``treated - baseline`` over the same questions, in points, with its spread.

    Why paired: with edge positioning the gold passage lands first whenever the relevance score ranks it first, so
    the two prompts differ only in the order of the distractors; the share of questions whose outcome flips, and a
    bootstrap interval over questions, say whether a gap of a few points is an effect or a handful of flips.
    """
    if len(treated) != len(baseline) or not treated:
        raise ValueError(f"need two equally long, non-empty outcome lists, got {len(treated)} and {len(baseline)}")
    diffs = [int(t) - int(b) for t, b in zip(treated, baseline, strict=True)]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choice(diffs) for _ in diffs) for _ in range(resamples))
    return {
        "questions": len(diffs),
        "difference_points": round(100 * statistics.fmean(diffs), 1),
        "ci95_low_points": round(100 * means[int(0.025 * resamples)], 1),
        "ci95_high_points": round(100 * means[int(0.975 * resamples) - 1], 1),
        "only_treated_right": sum(d > 0 for d in diffs),
        "only_baseline_right": sum(d < 0 for d in diffs),
    }


def best_threshold(present: Sequence[float], withheld: Sequence[float]) -> dict[str, float]:
    """The cut on the best retrieval score that best separates gold-present from gold-withheld questions.

    Balanced accuracy: the mean of the answered share with gold present and the abstained share without it.
    """
    best = {"threshold": 0.0, "balanced_accuracy": 0.5, "answered_present": 1.0, "abstained_withheld": 0.0}
    for cut in sorted({round(s, 3) for s in (*present, *withheld)}):
        answered = sum(s >= cut for s in present) / len(present)
        abstained = sum(s < cut for s in withheld) / len(withheld)
        balanced = (answered + abstained) / 2
        if balanced > best["balanced_accuracy"]:
            best = {
                "threshold": cut,
                "balanced_accuracy": round(balanced, 4),
                "answered_present": round(answered, 4),
                "abstained_withheld": round(abstained, 4),
            }
    return best


def format_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


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
