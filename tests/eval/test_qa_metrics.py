"""QA answer metrics, trace reading, per-answer scoring and summaries."""

from __future__ import annotations

import pytest

from eval.answer_metrics import abstained, answer_scores
from eval.qa import QAItem, read_trace, score_record
from eval.report import percentile, summarize_config

TRACE = {
    "stages": [
        {"stage": "bm25", "ms": 4.0, "hits": [{"chunk_id": "b#0", "doc_id": "b"}]},
        {"stage": "dense", "ms": 6.0, "hits": [{"chunk_id": "c#0", "doc_id": "c"}]},
        {
            "stage": "fusion",
            "ms": 1.0,
            "hits": [
                {"chunk_id": "x#0", "doc_id": "x"},
                {"chunk_id": "a#0", "doc_id": "a"},
                {"chunk_id": "a#1", "doc_id": "a"},
            ],
        },
        {"stage": "select", "ms": 0.5, "chunk_ids": ["x#0", "a#0"]},
        {"stage": "generate", "ms": 900.0, "prompt_tokens": 700, "completion_tokens": 40},
    ]
}


def test_abstention_from_text_and_from_trace() -> None:
    assert abstained("I don't know.")
    assert abstained("I don\u2019t know based on the sources")
    assert abstained("The sources do not contain the answer.")
    assert not abstained("Refunds take 30 days [1].")
    assert abstained("Refunds take 30 days.", {"stages": [{"stage": "abstain", "abstain": True}]})
    assert not abstained("Refunds take 30 days.", {"stages": [{"stage": "abstain", "abstain": False}]})


def test_answer_scores_max_over_answers_and_abstention() -> None:
    scores = answer_scores("The answer is 30 days [1].", ["30 days", "thirty days"])
    assert scores["exact_match"] == 0.0
    assert scores["contains"] == 1.0
    assert scores["token_f1"] == pytest.approx(2 * (2 / 5) * 1 / (2 / 5 + 1))
    assert scores["abstained"] == 0.0
    assert answer_scores("30 days", ["30 Days."])["exact_match"] == 1.0
    assert answer_scores("I don't know", []) == {"abstained": 1.0, "abstained_unanswerable": 1.0}
    assert answer_scores("I don't know", ["30 days"])["abstained_answerable"] == 1.0


def test_read_trace_takes_the_last_ranking_and_leaves_absent_values_missing() -> None:
    read = read_trace(TRACE)
    assert [h["doc_id"] for h in read["ranking"]] == ["x", "a", "a"]
    assert read["context_ids"] == ["x#0", "a#0"]
    assert read["tokens"] == {"generate.prompt_tokens": 700, "generate.completion_tokens": 40}
    assert read["compression_ratio"] is None
    assert read["stages_ms"]["generate"] == 900.0
    assert read["before_generation_ms"] == 11.5  # every stage the model waited for
    assert read_trace({"stages": [{"stage": "abstain", "ms": 2}]})["before_generation_ms"] is None  # never generated
    compressed = {"stages": [{"stage": "compress", "ms": 3, "tokens_before": 800, "tokens_after": 200}]}
    assert read_trace(compressed)["compression_ratio"] == 4.0
    skipped = {"stages": [{"stage": "compress", "ms": 1, "mode": "auto", "compressed": False}]}
    assert read_trace(skipped)["compression_ratio"] == 1.0
    assert read_trace({"stages": [{"stage": "budget", "budget": {"system": 60, "context": 900}}]})["tokens"] == {
        "budget.system": 60,
        "budget.context": 900,
    }


def test_score_record_retrieval_metrics_use_document_ranks() -> None:
    item = QAItem(id="q", question="?", answers=["x"], gold_ids=["a"])
    scores = score_record(item, "x", TRACE, ["text of x", "text of a"], k=2)
    assert scores["mrr"] == 0.5  # doc a first appears at rank 2; its second chunk does not count twice
    assert scores["p@2"] == 0.5
    assert scores["recall@2"] == 1.0
    assert scores["ndcg@10"] == pytest.approx(1 / 1.5849625, rel=1e-6)
    without_gold = score_record(QAItem(id="q", question="?", answers=["x"]), "x", TRACE, [], k=2)
    assert "mrr" not in without_gold and without_gold["exact_match"] == 1.0


def test_gold_contexts_score_context_recall_by_text() -> None:
    item = QAItem(id="q", question="?", answers=["x"], gold_contexts=["refunds are accepted within 30 days"])
    scores = score_record(item, "x", TRACE, ["EU customers: refunds are accepted within 30 days of purchase"], k=2)
    assert scores["gold_context_recall"] == 1.0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile([7.0], 95) == 7.0


def test_summary_keeps_missing_ragas_values_out_of_the_mean_with_reasons() -> None:
    def record(qid: str, faithfulness: float | None, reason: str | None) -> dict:
        return {
            "config": "c", "id": qid, "error": None, "wall_ms": 10.0, "scores": {"exact_match": 1.0},
            "stages_ms": {"generate": 5.0}, "before_generation_ms": 2.0, "tokens": {}, "compression_ratio": None,
            "ragas": {"faithfulness": {"value": faithfulness, "reason": reason}},
        }  # fmt: skip

    records = [record("1", 0.5, None), record("2", None, "unparsable judge output: x"), record("3", 1.0, None)]
    records.append({"config": "c", "id": "4", "error": "LLMUnavailableError: down", "wall_ms": 1.0})
    summary = summarize_config(records)
    assert summary["ragas"]["faithfulness"]["mean"] == 0.75
    assert summary["ragas"]["faithfulness"]["valid"] == 2 and summary["ragas"]["faithfulness"]["judged"] == 3
    assert summary["ragas"]["faithfulness"]["missing_reasons"] == {"unparsable judge output: x": 1}
    assert summary["ragas"]["context_recall"]["mean"] is None
    assert summary["compression_ratio"] is None
    assert summary["answered"] == 3 and summary["errors"] == [{"id": "4", "error": "LLMUnavailableError: down"}]
    assert summary["latency_ms"]["before generation"] == {"p50": 2.0, "p95": 2.0, "n": 3}


def test_judge_replies_breaking_a_binary_field_are_rejected_not_scored() -> None:
    from ragas.metrics.collections.answer_relevancy.util import AnswerRelevanceOutput
    from ragas.metrics.collections.faithfulness.util import NLIStatementOutput

    from eval.ragas_judge import JudgeOutputError, _check_binary

    _check_binary(AnswerRelevanceOutput(question="How long?", noncommittal=0))
    with pytest.raises(JudgeOutputError, match="noncommittal=30 is not 0 or 1"):
        _check_binary(AnswerRelevanceOutput(question="How long?", noncommittal=30))  # seen from a 0.5B judge
    nli = NLIStatementOutput.model_validate({"statements": [{"statement": "s", "reason": "r", "verdict": 2}]})
    with pytest.raises(JudgeOutputError, match=r"statements\.verdict=2"):
        _check_binary(nli)
