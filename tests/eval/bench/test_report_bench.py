"""The ingest bench's results file and table when the LlamaIndex baseline failed: the rows measured before it stay,
and no ratio against it is invented."""

from __future__ import annotations

from pathlib import Path

from eval.bench.ingest import IngestBenchResult, Throughput, ThroughputComparison
from eval.bench.padding import PaddingRatios
from eval.bench.report import ingest_event_line, ingest_lines


def _comparison(llamaindex: Throughput | None, error: str | None) -> ThroughputComparison:
    return ThroughputComparison(
        PaddingRatios(10, "corpus.jsonl", {32: 1.25}),
        Throughput("raw embedder, before", 10, 20, 2.0, 1.5),
        Throughput("raw embedder, after", 10, 20, 4.0, 2.5),
        Throughput("ragline ingest", 10, 20, 4.0, 4.0),
        llamaindex,
        error,
    )


def test_a_failed_llamaindex_baseline_is_reported_not_compared() -> None:
    result = IngestBenchResult("corpus.jsonl", 512, None, None, _comparison(None, "ImportError: no llama_index"))
    report = result.as_report()
    assert report["llamaindex_error"] == "ImportError: no llama_index"
    assert [row["label"] for row in report["results"]] == ["raw embedder (limit, mean)", "ragline ingest"]
    assert report["ours_vs_limit"] == 0.75 and report["ours_vs_limit_cpu"] == 0.5
    assert "ours_vs_llamaindex" not in report and "raptor" not in report
    lines = ingest_lines(result)
    assert lines[0].endswith("left out of the table: ImportError: no llama_index")
    assert not any("vs LlamaIndex" in line for line in lines)


def test_a_llamaindex_row_is_compared_and_a_raptor_only_run_has_no_table() -> None:
    llama = Throughput("LlamaIndex IngestionPipeline", 10, 20, 8.0, 6.0)
    report = IngestBenchResult("corpus.jsonl", 512, None, None, _comparison(llama, None)).as_report()
    assert report["ours_vs_llamaindex"] == 2.0 and "llamaindex_error" not in report
    raptor_only = IngestBenchResult("corpus.jsonl", 512, Path("folder"), [], None)
    assert raptor_only.as_report() == {"corpus": "corpus.jsonl", "batch_documents": 512, "raptor_folder": "folder",
                                       "raptor": []}  # fmt: skip
    assert ingest_lines(raptor_only) == []
    assert ingest_event_line(PaddingRatios(10, "corpus.jsonl", {32: 1.25})).splitlines() == [
        "10 documents from corpus.jsonl",
        "  padded tokens vs one sorted pass, by documents per embedding call: 32: 1.250",
    ]
