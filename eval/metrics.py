"""Retrieval metrics (P@k, recall@k, MRR@k, nDCG@k) and answer metrics (SQuAD exact match, SQuAD token F1, and
containment of the gold answer in the prediction).

Retrieval metrics follow the trec_eval / pytrec_eval definitions used by BEIR, so numbers here are comparable
with published BEIR results. Answer metrics follow the SQuAD evaluation script's normalization, the de facto
standard for extractive QA and for NQ-open. ``exact_match`` is SQuAD EM (equality after normalization) and
nothing else; the substring test that suits long generated answers is ``contains_answer``, reported as
``contains``: a table must not label it EM.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "contains_answer",
    "evaluate_retrieval",
    "exact_match",
    "ndcg_at_k",
    "normalize_answer",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank",
    "token_f1",
]

# --- retrieval -------------------------------------------------------------------------------------------------


def _dedupe(ranked: Iterable[str]) -> list[str]:
    """Collapse repeated doc ids keeping the first (best) rank.

    Several chunks of one document map to the same doc id; counting each chunk would let one relevant document
    score multiple hits and push precision and DCG above what the document-level qrels allow.
    """
    return list(dict.fromkeys(ranked))


def _positive(relevant: Mapping[str, int]) -> dict[str, int]:
    """Keep only judgments with relevance > 0 and refuse queries with none.

    Zero-graded docs are judged non-relevant (as in trec_eval). A query without any relevant doc has undefined
    recall and nDCG; averaging it in as 0 or 1 would silently bias the mean, so callers must drop it explicitly.
    """
    positive = {doc: rel for doc, rel in relevant.items() if rel > 0}
    if not positive:
        raise ValueError("query has no relevant documents (relevance > 0); drop it before evaluating")
    return positive


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def precision_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Fraction of the top k (deduplicated) docs that are relevant; the denominator is always k, as in trec_eval,
    so a retriever returning fewer than k docs is not rewarded for it."""
    _check_k(k)
    positive = _positive(relevant)
    return sum(doc in positive for doc in _dedupe(ranked)[:k]) / k


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Fraction of the relevant docs found in the top k (deduplicated); what a reader downstream can at best see."""
    _check_k(k)
    positive = _positive(relevant)
    return sum(doc in positive for doc in _dedupe(ranked)[:k]) / len(positive)


def reciprocal_rank(ranked: Sequence[str], relevant: Mapping[str, int], k: int | None = None) -> float:
    """1 / rank of the first relevant doc within the top k (all ranks if k is None), else 0.

    Averaged over queries this is MRR@k: how far down a user (or a context window) must read for a first hit.
    """
    if k is not None:
        _check_k(k)
    positive = _positive(relevant)
    docs = _dedupe(ranked)
    for rank, doc in enumerate(docs if k is None else docs[:k], start=1):
        if doc in positive:
            return 1.0 / rank
    return 0.0


def _dcg(gains: Iterable[float]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Normalized DCG@k with graded gain = relevance and a log2(rank + 1) discount (pytrec_eval's ``ndcg_cut``).

    DCG = sum over the top k of rel_i / log2(i + 1); IDCG is the DCG of the relevant set sorted by relevance and
    truncated at k, so a perfect top k scores 1 even when there are more than k relevant docs.
    """
    _check_k(k)
    positive = _positive(relevant)
    dcg = _dcg(positive.get(doc, 0) for doc in _dedupe(ranked)[:k])
    idcg = _dcg(sorted(positive.values(), reverse=True)[:k])
    return dcg / idcg


def evaluate_retrieval(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Mean ``ndcg@k``, ``recall@k``, ``p@k`` and ``mrr@k`` for each k, plus ``queries`` (how many were averaged).

    The mean is over the queries in ``qrels`` that have at least one relevant doc; queries without any are left
    out (their metrics are undefined). A judged query missing from ``run`` scores 0 rather than being skipped, so
    a retriever cannot improve its mean by failing to answer hard queries. Queries only in ``run`` are ignored.
    """
    if not ks:
        raise ValueError("ks must not be empty")
    for k in ks:
        _check_k(k)
    judged = {qid: rels for qid, rels in qrels.items() if any(rel > 0 for rel in rels.values())}
    if not judged:
        raise ValueError("no query in qrels has a relevant document")
    metrics = {
        "ndcg": ndcg_at_k,
        "recall": recall_at_k,
        "p": precision_at_k,
        "mrr": reciprocal_rank,
    }
    totals: dict[str, float] = {f"{name}@{k}": 0.0 for k in ks for name in metrics}
    for qid, rels in judged.items():
        ranked = run.get(qid, ())
        for k in ks:
            for name, fn in metrics.items():
                totals[f"{name}@{k}"] += fn(ranked, rels, k)
    result: dict[str, float] = {key: total / len(judged) for key, total in totals.items()}
    result["queries"] = len(judged)
    return result


# --- answers ---------------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lowercase, strip ASCII punctuation, drop articles a/an/the, collapse whitespace.

    Kept identical to the official SQuAD script (same order of steps) so EM/F1 match published numbers.
    """
    text = text.lower().translate(_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _require_answers(answers: Sequence[str]) -> None:
    # A bare string is a Sequence[str] too: scoring against its characters would be a silent bug.
    if isinstance(answers, str):
        raise TypeError("answers must be a sequence of strings, not a single string")
    if not answers:
        raise ValueError("answers must not be empty")


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD exact match: 1.0 if the normalized prediction equals any normalized gold answer, else 0.0.

    Equality, not containment: a correct answer inside a longer sentence scores 0 here (``contains_answer`` is the
    metric for that)."""
    _require_answers(answers)
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(answer) for answer in answers))


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    if not pred_tokens or not gold_tokens:
        # SQuAD v2 convention: two empty answers agree, one empty answer gets nothing.
        return float(pred_tokens == gold_tokens)
    overlap = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """Bag-of-tokens F1 between normalized prediction and gold answer, max over answers (SQuAD F1).

    Gives partial credit where EM is all-or-nothing, e.g. "Barack Obama" vs "Obama".
    """
    _require_answers(answers)
    pred_tokens = normalize_answer(prediction).split()
    return max(_f1(pred_tokens, normalize_answer(answer).split()) for answer in answers)


def contains_answer(prediction: str, answers: Sequence[str]) -> float:
    """Answer containment: 1.0 if any normalized gold answer occurs in the normalized prediction, else 0.0.

    This is the NQ-open accuracy for long generative answers, where EM fails on any surrounding words; it is not
    exact match and is reported under its own name (``contains``). The match is
    on whole tokens (the normalized strings are padded with spaces), so "1" does not match "1999" and "cat" does
    not match "concatenate". Answers that normalize to nothing (e.g. "the") never match, since the empty string
    would be contained in every prediction.
    """
    _require_answers(answers)
    haystack = f" {normalize_answer(prediction)} "
    return float(any(needle and f" {needle} " in haystack for needle in map(normalize_answer, answers)))
