"""What the context experiments share: the paired difference with its bootstrap interval."""

from __future__ import annotations

import pytest

from eval.experiments.common import paired_difference


def test_paired_difference_counts_flips_and_brackets_the_mean() -> None:
    treated = [True] * 18 + [False] * 2 + [True] * 1 + [False] * 19
    baseline = [True] * 18 + [True] * 2 + [False] * 1 + [False] * 19
    result = paired_difference(treated, baseline)
    assert result["questions"] == 40
    assert (result["only_treated_right"], result["only_baseline_right"]) == (1, 2)
    assert result["difference_points"] == -2.5
    assert -100 <= result["ci95_low_points"] <= -2.5 <= result["ci95_high_points"] <= 100
    assert paired_difference([True, False], [True, False])["difference_points"] == 0.0
    with pytest.raises(ValueError, match="equally long"):
        paired_difference([True], [True, False])
