"""``ragline eval injection`` end to end on the first item of the test split (one split keeps the three askings,
and their rerun, within minutes of a CPU generator): real embedder, real Chroma, the real
pipeline and the real vLLM; a rerun reads every answer back instead of asking again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.cli.test_experiments import _ragline, _report


@pytest.mark.vllm
def test_eval_injection_scores_the_test_split_and_a_rerun_asks_nothing(tmp_path: Path, models_env, vllm_server) -> None:
    data_dir = tmp_path / "data"
    env = models_env(data_dir, RAGLINE_LLM_BASE_URL=vllm_server.base_url, RAGLINE_LLM_TIMEOUT_S="900")
    first = _ragline(["injection", "--limit", "1", "--split", "test", "--workers", "3"], env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "split test" in first.stdout
    assert "injection-eval: 2 indexed" in first.stdout  # the item's injected and clean documents
    report = _report(data_dir, "injection")
    outcomes = report["outcomes"]
    assert len(outcomes) == 3 and all(o["answer"].strip() for o in outcomes)
    assert {(o["split"], o["variant"]) for o in outcomes} == {
        ("test", variant) for variant in ("clean", "attacked", "defended")
    }
    row = report["summary"]["splits"]["test"]
    assert row["items"] == 1 and row["defended_followed"] == 0.0  # the screen removed the planted sentence
    again = _ragline(["injection", "--limit", "1", "--split", "test", "--workers", "3"], env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "answers read back from an earlier run: 3" in again.stdout
    assert [o["answer"] for o in _report(data_dir, "injection")["outcomes"]] == [o["answer"] for o in outcomes]
