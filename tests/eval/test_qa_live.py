"""``eval qa`` for real: the sample index, a real vLLM generator and the same vLLM as RAGAS judge."""

from __future__ import annotations

import math
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


def _patient(resources: Resources) -> Resources:
    """The live resources with a 15-minute LLM timeout: three answers at once plus the judge's long requests can
    queue behind each other on a two-core CPU vLLM for longer than the 180 s default."""
    patient = Resources(resources.settings.model_copy(update={"llm_timeout_s": 900.0}))
    patient.__dict__["index"] = resources.index
    patient.__dict__["embedder"] = resources.embedder
    return patient


@pytest.mark.long(220)  # seconds under two xdist workers, 2026-12-04
def test_three_questions_scored_judged_reported_and_resumed(live_resources: Resources, tmp_path: Path) -> None:
    live_resources = _patient(live_resources)
    items = load_dataset(SAMPLE_QA, limit=3).items
    judge = _judge(live_resources, max_tokens=512)
    judge.check()
    store = RunStore(tmp_path / "run")

    def score(item: QAItem, answer: str, contexts: list[str]) -> dict:
        return judge.score(item.question, answer, contexts, item.reference)

    short = {"max_answer_tokens": 96}  # the sample answers are one sentence; a long answer only costs CPU time
    ran = run_config(
        Pipeline(live_resources), items, "sample", "hybrid", short, store, workers=3, judge=score, judge_limit=1
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

    assert run_config(Pipeline(live_resources), items, "sample", "hybrid", short, store) == 0  # nothing left
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
