"""``ragline bench load`` against the API in this process: a dead LLM gives 503s and a trickling one 504s, every
request ends, and nothing else is counted. Counts only: no wall-clock threshold."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.bench_wiring import api_under_load
from app.resources import Resources
from eval.bench.load import CONNECTION_ERROR, STREAM_CUT, TIMEOUT, LoadResult, _one, percentile, run_load


@pytest.mark.parametrize(("llm", "status"), [("dead", "503"), ("trickle", "504")])
def test_every_request_ends_with_the_status_of_the_llm_fault(
    sample_resources: Resources, llm: str, status: str
) -> None:
    with api_under_load(sample_resources.settings, llm, llm_timeout_s=1.0) as url:
        result = run_load(url, clients=4, seconds=3, client_timeout_s=31)
    summary = result.summary()
    assert result.requests >= 4, summary
    assert summary["by_status"] == {status: result.requests}, summary
    assert summary["by_class"] == {"5xx": result.requests}
    assert {key: stats["count"] for key, stats in summary["latency_ms"].items()} == {
        "5xx": result.requests,
        "all": result.requests,
    }
    assert {key: stats["count"] for key, stats in summary["latency_ms_by_status"].items()} == {status: result.requests}


def test_an_unknown_mode_or_a_missing_collection_is_refused(sample_resources: Resources, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--llm must be one of"), api_under_load(sample_resources.settings, "x", None):
        pass
    empty = sample_resources.settings.model_copy(update={"data_dir": tmp_path})
    with pytest.raises(LookupError, match="'sample' does not exist"), api_under_load(empty, "trickle", None):
        pass
    with (
        pytest.raises(LookupError, match="'nope' does not exist"),
        api_under_load(sample_resources.settings, "dead", None, collection="nope"),
    ):
        pass


def test_outcomes_are_counted_by_status_and_class() -> None:
    result = LoadResult(clients=2, seconds=1, wall_s=2.0)
    for outcome, latencies in {
        "200": [1.0, 2.0, 3.0],
        "503": [10.0],
        "504": [20.0, 30.0],
        "422": [5.0],
        TIMEOUT: [40.0],
        CONNECTION_ERROR: [0.5],
    }.items():
        result.statuses[outcome] = len(latencies)
        result.latencies_ms[outcome] = latencies
    summary = result.summary()
    assert summary["requests"] == 9 and summary["requests_per_s"] == 4.5
    assert summary["by_class"] == {"2xx": 3, "4xx": 1, "5xx": 3, TIMEOUT: 1, CONNECTION_ERROR: 1}
    assert summary["latency_ms"]["5xx"] == {"count": 3, "p50": 20.0, "p90": 30.0, "p99": 30.0, "max": 30.0}
    assert summary["latency_ms"]["all"]["count"] == 9
    assert summary["latency_ms_by_status"]["504"]["count"] == 2
    assert any(line.startswith("5xx") for line in result.lines())
    assert percentile([], 0.5) is None and percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ('event: delta\ndata: {"text": "a"}\n\nevent: answer\ndata: {}\n\n', "200"),
        ('event: error\ndata: {"error": {"type": "gateway_timeout", "message": "m"}}\n\n', "504"),
        ('event: error\ndata: {"error": {"type": "service_unavailable", "message": "m"}}\n\n', "503"),
        ('event: delta\ndata: {"text": "a"}\n\n', STREAM_CUT),
    ],
)
def test_a_streamed_outcome_is_read_from_its_events(body: str, outcome: str) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=body))
    with httpx.Client(transport=transport) as client:
        assert _one(client, "http://api/v1/query", "q", "sample", stream=True) == outcome
