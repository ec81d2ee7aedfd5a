"""The calibrated blend learns which score to trust from labelled lists, and ranks as the fixed blend when told."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.rerank import blend
from retrieval.rerank_calibration import FEATURES, LogisticBlend, candidate_features, fit_logistic_blend


def _lists(trust: str, seed: int = 0, count: int = 60) -> list[tuple[np.ndarray, np.ndarray, list[bool]]]:
    """Lists of 10 where exactly one candidate is relevant and only the ``trust``ed score knows which."""
    rng = np.random.default_rng(seed)
    lists = []
    for _ in range(count):
        relevant = int(rng.integers(0, 10))
        fusion = np.sort(rng.random(10))[::-1].copy()
        probabilities = rng.uniform(0.05, 0.6, 10)
        if trust == "cross-encoder":
            probabilities[relevant] = 0.95
        else:
            fusion[relevant] = 2.0
        lists.append((fusion, probabilities, [i == relevant for i in range(10)]))
    return lists


@pytest.mark.parametrize(("trust", "feature"), [("cross-encoder", "logit"), ("fusion", "fusion_minmax")])
def test_the_fit_puts_its_weight_on_the_score_that_knows(trust: str, feature: str) -> None:
    model = fit_logistic_blend(_lists(trust))
    assert max(range(len(FEATURES)), key=lambda i: abs(model.coef[i])) in {
        FEATURES.index(feature),
        FEATURES.index("logit_minmax" if feature == "logit" else feature),
    }
    hits = 0
    for fusion, probabilities, relevant in _lists(trust, seed=1, count=30):
        hits += relevant[int(np.argmax(model.scores(fusion, probabilities)))]
    assert hits == 30


def test_features_follow_the_incoming_order() -> None:
    features = candidate_features(np.array([3.0, 2.0, 1.0]), np.array([0.5, 0.9, 0.1]))
    assert features.shape == (3, len(FEATURES))
    assert list(features[:, 0]) == [1.0, 0.5, 0.0]
    assert list(features[:, 3]) == [1.0, 0.5, pytest.approx(1 / 3)]
    assert features[1, 2] == pytest.approx(np.log(0.9 / 0.1))


def test_a_blend_written_as_coefficients_ranks_as_the_fixed_blend() -> None:
    fusion, probabilities = np.array([0.9, 0.7, 0.4, 0.1]), np.array([0.2, 0.9, 0.3, 0.8])
    fixed = LogisticBlend((0.6, 0.4, 0.0, 0.0), 0.0)
    assert list(np.argsort(-fixed.scores(fusion, probabilities))) == list(
        np.argsort(-blend(fusion, probabilities, 0.4))
    )
    assert LogisticBlend.from_dict(fixed.as_dict()) == fixed


def test_labels_all_alike_or_mismatched_are_refused() -> None:
    with pytest.raises(ValueError, match="relevant and irrelevant"):
        fit_logistic_blend([(np.array([1.0, 0.5]), np.array([0.2, 0.3]), [False, False])])
    with pytest.raises(ValueError, match="fusion scores for"):
        candidate_features(np.array([1.0]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="features"):
        LogisticBlend.from_dict({"features": ["x"], "coef": [1.0], "intercept": 0.0})
