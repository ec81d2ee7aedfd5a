"""The prefix-cache result: medians of cold and warm time to first token and their ratio, as reported."""

from __future__ import annotations

from eval.experiments.prefix_cache import PrefixCacheExperiment


def test_the_report_holds_medians_and_the_cold_over_warm_ratio() -> None:
    result = PrefixCacheExperiment(
        prompt_tokens=208, repeats=3, cold_ms=[900.04, 1100.0, 1000.0], warm_ms=[250.0, 240.0, 260.0]
    )
    report = result.report()
    assert report["results"] == [
        {"request": "cold (prefix unseen)", "ttft_ms_median": 1000.0},
        {"request": "warm (prefix cached)", "ttft_ms_median": 250.0},
    ]
    assert report["cold_over_warm"] == 4.0 and report["cold_ms"] == [900.0, 1100.0, 1000.0]
    assert result.lines()[-1] == "prompt tokens 208; cold/warm TTFT ratio 4.0"
