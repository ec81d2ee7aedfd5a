"""``eval qa`` for real: the sample index, a real vLLM generator and the same vLLM as RAGAS judge."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from app.query.pipeline import Pipeline
from app.resources import Resources, served_model_name
from eval.qa import QAItem, RunStore, load_dataset, run_config
from eval.ragas_judge import METRICS, JudgeConfig, RagasJudge
from eval.report import write_report

pytestmark = pytest.mark.vllm
SAMPLE_QA = Path(__file__).resolve().parents[2] / "eval" / "datasets" / "sample_qa.jsonl"


def _judge(resources: Resources, max_tokens: int) -> RagasJudge:
    config = JudgeConfig(resources.settings.llm_base_url, served_model_name(resources.settings), max_tokens=max_tokens)
    return RagasJudge(config, resources.embedder)


def test_three_questions_scored_judged_reported_and_resumed(live_resources: Resources, tmp_path: Path) -> None:
    items = load_dataset(SAMPLE_QA, limit=3).items
    chunks = {c.id: c for c in live_resources.index.manifest.chunks("sample")}
    judge = _judge(live_resources, max_tokens=512)
    judge.check()
    store = RunStore(tmp_path / "run")

    def score(item: QAItem, answer: str, contexts: list[str]) -> dict:
        return judge.score(item.question, answer, contexts, item.reference)

    ran = run_config(
        Pipeline(live_resources), chunks, items, "sample", "hybrid", {}, store, workers=3, judge=score, judge_limit=1
    )
    assert ran == 3
    records = {r["id"]: r for r in store.records()}
    assert set(records) == {"q01", "q02", "q03"}
    for record in records.values():
        assert record["error"] is None and record["answer"]
        assert {"exact_match", "token_f1", "contains", "abstained", "p@5", "recall@5", "mrr", "ndcg@10"} <= set(
            record["scores"]
        )
        assert record["context"] and record["stages_ms"]["generate"] > 0
        assert record["tokens"]["generate.prompt_tokens"] > 0
    assert records["q01"]["scores"]["recall@5"] == 1.0  # the EU refund policy is retrieved for the EU question
    judged = records["q01"]["ragas"]
    assert set(judged) == set(METRICS)
    for outcome in judged.values():  # a value in [0, 1], or missing with the judge's failure as the reason
        if outcome["value"] is None:
            assert outcome["reason"]
        else:
            assert 0.0 <= outcome["value"] <= 1.0 and not math.isnan(outcome["value"])
    assert "ragas" not in records["q02"]  # beyond the judge limit

    assert run_config(Pipeline(live_resources), chunks, items, "sample", "hybrid", {}, store) == 0  # nothing left
    manifest = {"configs": {"hybrid": {"options": {}, "note": ""}}, "judge": None, "dataset": str(SAMPLE_QA)}
    report = write_report(store.folder, manifest, store.records())
    assert report["summary"]["hybrid"]["answered"] == 3
    assert (store.folder / "report.html").is_file()


def test_unparsable_judge_output_is_a_missing_value_with_the_reason(live_resources: Resources) -> None:
    # Eight output tokens cut every judge JSON short: a real unparsable reply, from the real judge.
    judge = _judge(live_resources, max_tokens=8)
    contexts = ["EU customers have 30 days from the date of a charge to request a refund."]
    result = judge.score("How long do EU customers have to request a refund?", "30 days [1].", contexts, "30 days")
    assert set(result) == set(METRICS)
    for outcome in result.values():
        assert outcome["value"] is None
        assert outcome["reason"].startswith("unparsable judge output"), outcome


def test_cli_reports_bad_rows_and_resumes_an_interrupted_run(
    live_resources: Resources, models_env, tmp_path: Path
) -> None:
    settings = live_resources.settings
    dataset = tmp_path / "qa.jsonl"
    rows = [json.loads(line) for line in SAMPLE_QA.read_text().splitlines()[:2]]
    dataset.write_text(f"{json.dumps(rows[0])}\n{{broken\n{json.dumps(rows[1])}\n")
    env = models_env(settings.data_dir, RAGLINE_LLM_BASE_URL=settings.llm_base_url)
    base = [sys.executable, "-m", "app.cli", "eval", "qa"]

    def ragline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, env=env, timeout=600)

    first = ragline("--dataset", str(dataset), "--collection", "sample", "--no-ragas", "--run-id", "cli-run")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "qa.jsonl:2: invalid JSON" in first.stderr
    run = settings.reports_dir / "cli-run"
    lines = (run / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2
    (run / "results.jsonl").write_text(lines[0] + "\n" + lines[1][:40])  # as if killed while writing the second
    resumed = ragline("--resume", "cli-run")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "1 results already stored" in resumed.stdout
    store = RunStore(run)
    assert sorted(r["id"] for r in store.records()) == ["q01", "q02"]
    report = json.loads((run / "report.json").read_text())
    assert report["summary"]["default"]["answered"] == 2
    assert 'id="metrics"' in (run / "report.html").read_text()
