"""``ragline bench load`` end to end, as a person runs it: a dead LLM gives only 503s, a trickling one only 504s,
and the JSON report says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli.root import app
from app.resources import Resources
from app.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """The command reads settings from the environment CliRunner sets: no settings cached by another test."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(("llm", "status"), [("dead", "503"), ("trickle", "504")])
def test_bench_load_counts_every_request_under_the_status_of_the_llm_fault(
    sample_resources: Resources, models_env, llm: str, status: str
) -> None:
    env = models_env(sample_resources.settings.data_dir)
    args = ["bench", "load", "--clients", "4", "--seconds", "3", "--llm", llm, "--llm-timeout-s", "1"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert f"LLM {llm}, deadline 1 s" in result.output
    report = json.loads(Path(result.output.strip().splitlines()[-1].removeprefix("report: ")).read_text())
    assert report["requests"] >= 4 and report["by_status"] == {status: report["requests"]}, report
    assert report["by_class"] == {"5xx": report["requests"]}
    assert (report["collection"], report["llm"], report["llm_timeout_s"]) == ("sample", llm, 1.0)
    assert set(report["latency_ms"]) == {"5xx", "all"} and set(report["latency_ms_by_status"]) == {status}


def test_bench_load_refuses_a_bad_collection_name_and_a_missing_collection(
    sample_resources: Resources, models_env
) -> None:
    env = models_env(sample_resources.settings.data_dir)
    bad = CliRunner().invoke(app, ["bench", "load", "--collection", "../x", "--llm", "dead"], env=env)
    assert bad.exit_code != 0 and "collection name" in bad.output
    missing = CliRunner().invoke(app, ["bench", "load", "--collection", "nothere", "--llm", "dead"], env=env)
    assert missing.exit_code != 0 and "nothere" in missing.output
