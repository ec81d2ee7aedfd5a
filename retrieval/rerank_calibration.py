"""A learned combination of the fusion score and the cross-encoder score, in place of a fixed blend weight.

The fixed blend (``retrieval.rerank.blend``) min-max normalises both scores over each list, which throws away how
sure the cross-encoder is in absolute terms and where hybrid ranked the hit. A logistic regression over a few
features of each candidate (fusion score and logit, normalised over the list; the raw logit; the hybrid rank) fitted
on labelled queries that were never trained on (the ``choose`` part of ``eval.splits``) weighs them from data. Its
linear score is what ranks; the intercept does not change an order. numpy only, so the query path needs nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.rerank import logits

__all__ = ["FEATURES", "LogisticBlend", "candidate_features", "fit_logistic_blend"]

FEATURES = ("fusion_minmax", "logit_minmax", "logit", "hybrid_reciprocal_rank")


def candidate_features(incoming: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """One row per candidate (in the incoming, hybrid order), one column per name in ``FEATURES``."""
    incoming = np.asarray(incoming, dtype=np.float64)
    logit = logits(probabilities)
    if incoming.shape != logit.shape:
        raise ValueError(f"{incoming.shape[0]} fusion scores for {logit.shape[0]} cross-encoder scores")
    rank = np.arange(len(incoming), dtype=np.float64)
    return np.column_stack([_min_max(incoming), _min_max(logit), logit, 1.0 / (1.0 + rank)])


@dataclass(frozen=True)
class LogisticBlend:
    """Coefficients over ``FEATURES`` (and an intercept) of P(relevant | candidate)."""

    coef: tuple[float, ...]
    intercept: float

    def scores(self, incoming: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """The ranking score of each candidate (higher first); a monotone function of P(relevant)."""
        return candidate_features(incoming, probabilities) @ np.asarray(self.coef) + self.intercept

    def as_dict(self) -> dict[str, object]:
        return {"features": list(FEATURES), "coef": [round(c, 6) for c in self.coef], "intercept": self.intercept}

    @classmethod
    def from_dict(cls, record: dict[str, object]) -> LogisticBlend:
        if record.get("features") != list(FEATURES):
            raise ValueError(f"calibration features {record.get('features')} are not {list(FEATURES)}")
        coef = record["coef"]
        if not isinstance(coef, list) or len(coef) != len(FEATURES):
            raise ValueError(f"calibration needs {len(FEATURES)} coefficients")
        return cls(tuple(float(c) for c in coef), float(str(record["intercept"])))


def fit_logistic_blend(
    lists: Iterable[tuple[np.ndarray, np.ndarray, Sequence[bool]]], *, l2: float = 1.0, iterations: int = 50
) -> LogisticBlend:
    """Fit on ``(fusion scores, cross-encoder probabilities, relevant?)`` per labelled list, by Newton's method on
    the L2-penalised log-likelihood (the intercept unpenalised). ``ValueError`` when the labels are all alike."""
    rows, labels = [], []
    for incoming, probabilities, relevant in lists:
        rows.append(candidate_features(incoming, probabilities))
        labels.extend(bool(r) for r in relevant)
    if not rows:
        raise ValueError("no lists to fit on")
    x = np.vstack(rows)
    y = np.asarray(labels, dtype=np.float64)
    if y.shape[0] != x.shape[0]:
        raise ValueError("one relevance label per candidate is needed")
    if y.min() == y.max():
        raise ValueError("calibration needs relevant and irrelevant candidates")
    design = np.column_stack([np.ones(len(x)), x])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    w = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30, 30)))
        gradient = design.T @ (p - y) + penalty * w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return LogisticBlend(tuple(float(c) for c in w[1:]), float(w[0]))


def _min_max(values: np.ndarray) -> np.ndarray:
    spread = float(values.max() - values.min()) if values.size else 0.0
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)
