"""The paired bootstrap: the interval holds the mean gain, narrows with agreement, and refuses unpaired data."""

from __future__ import annotations

import pytest

from eval.bootstrap import paired_bootstrap


def test_a_constant_gain_has_a_zero_width_interval_at_that_gain() -> None:
    baseline = {f"q{i}": i / 100 for i in range(30)}
    system = {q: v + 0.02 for q, v in baseline.items()}
    interval = paired_bootstrap(system, baseline, resamples=500)
    assert interval.mean == pytest.approx(0.02)
    assert interval.low == pytest.approx(0.02) and interval.high == pytest.approx(0.02)
    assert interval.p_not_better == 0.0 and interval.points() == "+2.0 [+2.0, +2.0]"


def test_the_interval_brackets_the_mean_and_crosses_zero_for_a_coin_flip() -> None:
    baseline = {f"q{i}": 0.5 for i in range(40)}
    system = {q: 0.5 + (0.1 if i % 2 else -0.1) for i, q in enumerate(baseline)}
    interval = paired_bootstrap(system, baseline, resamples=2000, seed=1)
    assert interval.mean == pytest.approx(0.0, abs=1e-12)
    assert interval.low < 0 < interval.high
    assert 0.3 < interval.p_not_better < 0.7
    assert interval == paired_bootstrap(system, baseline, resamples=2000, seed=1)


def test_a_bigger_spread_gives_a_wider_interval() -> None:
    baseline = {f"q{i}": 0.5 for i in range(40)}
    narrow = {q: 0.5 + (0.05 if i % 2 else -0.01) for i, q in enumerate(baseline)}
    wide = {q: 0.5 + (0.4 if i % 2 else -0.36) for i, q in enumerate(baseline)}
    a = paired_bootstrap(narrow, baseline, resamples=2000)
    b = paired_bootstrap(wide, baseline, resamples=2000)
    assert a.mean == pytest.approx(b.mean)
    assert (b.high - b.low) > 5 * (a.high - a.low)


def test_unpaired_or_empty_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="same queries"):
        paired_bootstrap({"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match="no queries"):
        paired_bootstrap({}, {})
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap({"a": 1.0}, {"a": 0.0}, level=1.5)
