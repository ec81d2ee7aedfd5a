"""What the context experiments share: the paired difference, rates, tables and the report file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.experiments.common import ReportFile, format_table, median_ms, paired_difference, stage_entry, true_rate


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


def test_a_report_is_named_once_and_rewritten_in_place(tmp_path: Path) -> None:
    report = ReportFile(tmp_path / "reports", "position")
    assert report.path is None
    first = report.write({"k_done": [10]})
    assert first.name.startswith("context-position-") and first.suffix == ".json"
    assert report.write({"k_done": [10, 20]}) == first
    assert json.loads(first.read_text()) == {"k_done": [10, 20]}
    assert list((tmp_path / "reports").iterdir()) == [first]


def test_rates_tables_and_stage_entries() -> None:
    assert true_rate([True, False, False]) == 0.3333 and true_rate([]) is None
    assert median_ms([3.0, 1.0, 2.0]) == 2.0 and median_ms([]) is None
    assert format_table([{"a": 1, "bb": "x"}, {"a": 22}]).splitlines() == ["a   bb", "1   x ", "22    "]
    trace = {"stages": [{"stage": "fusion", "hits": []}]}
    assert stage_entry(trace, "fusion") == {"stage": "fusion", "hits": []} and stage_entry(trace, "position") == {}
