"""The paired comparison of two variants' per-query scores: the mean difference, its interval and the counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.paired import compare_qa_runs, compare_reports, paired_mean_difference


def test_a_consistent_gain_has_an_interval_above_zero_and_a_wash_straddles_it() -> None:
    gain = paired_mean_difference([0.6, 0.7, 0.8, 0.9] * 10, [0.5, 0.6, 0.7, 0.8] * 10)
    assert gain["difference_points"] == pytest.approx(10.0)
    assert gain["ci95_low_points"] == pytest.approx(10.0) and gain["better"] == 40 and gain["worse"] == 0
    wash = paired_mean_difference([1.0, 0.0] * 20, [0.0, 1.0] * 20)
    assert wash["difference_points"] == 0.0 and wash["ci95_low_points"] < 0 < wash["ci95_high_points"]
    with pytest.raises(ValueError, match="equally long"):
        paired_mean_difference([1.0], [])


def test_two_reports_compare_on_the_same_queries_only(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"per_query": {"ndcg@10": {"hybrid": {"q1": 0.5, "q2": 1.0}}}}))
    b.write_text(json.dumps({"per_query": {"ndcg@10": {"hybrid": {"q1": 1.0, "q2": 1.0}}}}))
    result = compare_reports((a, "hybrid"), (b, "hybrid"))
    assert result["difference_points"] == 25.0 and (result["better"], result["worse"]) == (1, 0)
    with pytest.raises(KeyError, match="holds hybrid"):
        compare_reports((a, "rerank"), (b, "hybrid"))
    b.write_text(json.dumps({"per_query": {"ndcg@10": {"hybrid": {"q1": 1.0}}}}))
    with pytest.raises(ValueError, match="different queries"):
        compare_reports((a, "hybrid"), (b, "hybrid"))


def test_two_qa_runs_compare_on_the_questions_both_answered(tmp_path: Path) -> None:
    def write(path: Path, rows: list[tuple[str, float, str | None]]) -> None:
        lines = [json.dumps({"config": "defaults", "id": q, "error": e, "scores": {"contains": c}}) for q, c, e in rows]
        path.write_text("\n".join(lines) + "\n")

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write(a, [("q1", 0.0, None), ("q2", 1.0, None), ("q3", 1.0, None)])
    write(b, [("q1", 1.0, None), ("q2", 1.0, None), ("q3", 0.0, "timeout")])
    result = compare_qa_runs((a, "defaults"), (b, "defaults"))
    assert result["queries"] == 2 and result["difference_points"] == 50.0  # q3 errored in b: left out
    with pytest.raises(ValueError, match="holds defaults"):
        compare_qa_runs((a, "long-rerank"), (b, "defaults"))
