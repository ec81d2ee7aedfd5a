"""``ragline bench load`` against the API in this process: a dead LLM gives 503s and a trickling one 504s, every
request ends, and nothing else is counted."""

from __future__ import annotations

import pytest

from app.bench_wiring import api_under_load
from app.resources import Resources
from eval.bench.load import run_load


@pytest.mark.parametrize(("llm", "status"), [("dead", "503"), ("trickle", "504")])
def test_every_request_ends_with_the_status_of_the_llm_fault(
    sample_resources: Resources, llm: str, status: str
) -> None:
    with api_under_load(sample_resources.settings, llm, llm_timeout_s=1.0) as url:
        result = run_load(url, clients=3, seconds=2, client_timeout_s=60)
    summary = result.summary()
    assert result.requests >= 3 and summary["by_status"] == {status: result.requests}, summary
    assert summary["by_class"] == {"5xx": result.requests}
    assert set(summary["latency_ms"]) == {status, "all"}


def test_an_unknown_mode_or_a_missing_collection_is_refused(sample_resources: Resources, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="--llm must be one of"), api_under_load(sample_resources.settings, "x", None):
        pass
    empty = sample_resources.settings.model_copy(update={"data_dir": tmp_path})
    with pytest.raises(LookupError, match="sample"), api_under_load(empty, "dead", None):
        pass
