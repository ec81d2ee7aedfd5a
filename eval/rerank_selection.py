"""The reranker's tuned choices (rerank mode, pair length, rerank depth, blend weight, or a calibrated blend) made
on ``choose``, reported on ``report``.

The cross-encoder scores each query's top ``top_n`` once per scorer (an isolated pair length, or a long-context
joint length); every weight and the calibrated blend are then rankings of the same scores, so a grid costs one model
pass per scorer. Shallower depths reuse an isolated scorer's scores (a pair's score does not depend on the other
candidates); a long-context scorer reads each depth's head anew, since its joint passages do. Rankings follow the
query pipeline exactly (``retrieval.rerank.blend``: the reranked head, then the rest of the hybrid list in order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from eval.retrieval_quality import doc_ranking
from eval.selection import choose_then_report, format_selection, per_query_ndcg
from eval.splits import QuerySplit
from retrieval.long_rerank import LongContextReranker
from retrieval.rerank import CrossEncoderReranker, blend
from retrieval.rerank_calibration import LogisticBlend, fit_logistic_blend
from retrieval.types import Hit

__all__ = [
    "DEFAULT_WEIGHTS",
    "HYBRID",
    "HitScorer",
    "candidate_parts",
    "isolated_scorer",
    "joint_scorer",
    "rerank_selection",
]

HYBRID = "hybrid"
DEFAULT_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)

HitScorer = Callable[[str, Sequence[Hit]], np.ndarray]
"""(query, candidates) → one cross-encoder probability per candidate, in candidate order."""


def isolated_scorer(reranker: CrossEncoderReranker) -> HitScorer:
    """Each candidate read alone, as ``rerank_mode = isolated`` reads it; a (query, chunk) pair is scored once, so a
    shallower rerank depth costs no model pass."""
    known: dict[tuple[str, str], float] = {}

    def score(query: str, hits: Sequence[Hit]) -> np.ndarray:
        missing = list({h.chunk.id: h for h in hits if (query, h.chunk.id) not in known}.values())
        if missing:
            values = reranker.score(query, [h.chunk.text for h in missing])
            known.update(((query, h.chunk.id), float(v)) for h, v in zip(missing, values, strict=True))
        return np.asarray([known[(query, h.chunk.id)] for h in hits], dtype=np.float64)

    return score


def joint_scorer(reranker: LongContextReranker) -> HitScorer:
    """Each candidate read in its joint passage of same-document candidates, as ``rerank_mode = long-context`` reads
    it (identical passages scored once)."""

    return lambda query, hits: reranker.score_hits(query, hits)[0].astype(np.float64)


def _label(scorer: str, weight: float | None) -> str:
    return f"{scorer} " + ("calibrated" if weight is None else f"w={weight:.1f}")


def candidate_parts(label: str) -> dict[str, str]:
    """The ``key=value`` parts of a candidate's name (``len=192 n=30 w=0.3`` → len, n, w); a calibrated blend has
    no ``w``, and ``hybrid`` has none."""
    return dict(part.split("=", 1) for part in label.split() if "=" in part)


def rerank_selection(
    lists: Mapping[str, Sequence[Hit]],
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    split: QuerySplit,
    scorers: Mapping[str, HitScorer],
    *,
    top_n: int | Sequence[int],
    k: int = 10,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    calibrate: bool = True,
    progress: bool = True,
    fixed: str | None = None,
) -> dict[str, Any]:
    """Choose among hybrid alone, every (length, depth, weight) blend and (with ``calibrate``) a logistic blend per
    length and depth fitted on ``choose``; report each family's and the overall winner's ``report`` number with a
    paired bootstrap interval over hybrid. ``scorers`` maps a label (``len=192`` for an isolated pair length,
    ``long=512`` for a long-context one) to its scorer; ``top_n`` is the rerank depth, or several depths to choose
    among. Candidate names are the label, the depth when there are several, and the weight (``len=192 w=0.4``,
    ``len=192 n=20 w=0.4``). ``fixed`` names a candidate settled before this run (a refit model's): it is
    reported as it is and no per-family choice is made."""
    depths = sorted({top_n} if isinstance(top_n, int) else set(top_n), reverse=True)  # deepest first: it fills caches
    if not depths or depths[-1] < 1:
        raise ValueError(f"rerank depths must be positive, got {top_n!r}")
    choose_ids = [q for q in split.choose if q in lists]
    report_ids = [q for q in split.report if q in lists]
    ids = choose_ids + report_ids
    per_query: dict[str, dict[str, float]] = {HYBRID: _ndcg({q: list(lists[q]) for q in ids}, qrels, k)}
    calibrations: dict[str, dict[str, object]] = {}
    families: dict[str, list[str]] = {"blend": [HYBRID], "calibrated": [HYBRID]}
    heads_at = {depth: {q: list(lists[q][:depth]) for q in ids} for depth in depths}
    incoming_at = {
        depth: {q: np.asarray([h.score for h in heads[q]], dtype=np.float64) for q in ids}
        for depth, heads in heads_at.items()
    }
    for name, scorer in scorers.items():
        for depth in depths:
            scored = name if len(depths) == 1 else f"{name} n={depth}"
            heads, incoming = heads_at[depth], incoming_at[depth]
            probabilities = {
                q: scorer(queries[q], heads[q])
                for q in tqdm(ids, desc=f"cross-encoder ({scored})", unit="query", disable=not progress)
            }
            for weight in weights:
                label = _label(scored, weight)
                order = {q: np.argsort(-blend(incoming[q], probabilities[q], weight), kind="stable") for q in ids}
                per_query[label] = _ndcg(_reordered(lists, heads, order, depth), qrels, k)
                families["blend"].append(label)
            if calibrate:
                labelled = [
                    (incoming[q], probabilities[q], [_relevant(h, qrels.get(q, {})) for h in heads[q]])
                    for q in choose_ids
                ]
                model = fit_logistic_blend(labelled)
                label = _label(scored, None)
                calibrations[label] = model.as_dict()
                order = {q: np.argsort(-_scores(model, incoming[q], probabilities[q]), kind="stable") for q in ids}
                per_query[label] = _ndcg(_reordered(lists, heads, order, depth), qrels, k)
                families["calibrated"].append(label)
    selections = {
        name: choose_then_report(
            f"rerank {name} ({', '.join(scorers)})",
            {c: per_query[c] for c in members},
            HYBRID,
            choose_ids,
            report_ids,
        )
        for name, members in families.items()
        if len(members) > 1 and fixed is None
    }
    overall = choose_then_report("rerank, every candidate", per_query, HYBRID, choose_ids, report_ids, fixed=fixed)
    return {
        "split": split.as_record(),
        "queries": {"choose": len(choose_ids), "report": len(report_ids)},
        "top_n": depths[0] if len(depths) == 1 else sorted(depths),
        "k": k,
        "selections": {name: s.as_dict() for name, s in selections.items()},
        "overall": overall.as_dict(),
        "calibrations": calibrations,
        "printed": [line for s in [*selections.values(), overall] for line in [*format_selection(s, f"nDCG@{k}"), ""]],
    }


def _scores(model: LogisticBlend, incoming: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    return model.scores(incoming, probabilities)


def _relevant(hit: Hit, rels: Mapping[str, int]) -> bool:
    return rels.get(hit.chunk.doc_id, 0) > 0


def _reordered(
    lists: Mapping[str, Sequence[Hit]], heads: Mapping[str, list[Hit]], order: Mapping[str, np.ndarray], top_n: int
) -> dict[str, list[Hit]]:
    return {q: [heads[q][i] for i in order[q]] + list(lists[q][top_n:]) for q in order}


def _ndcg(runs: Mapping[str, Sequence[Hit]], qrels: Mapping[str, Mapping[str, int]], k: int) -> dict[str, float]:
    judged = {q: qrels[q] for q in runs if q in qrels}
    return per_query_ndcg({q: doc_ranking(hits) for q, hits in runs.items()}, judged, k)
