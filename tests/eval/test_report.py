"""Report files (JSON, PNG plots, HTML tables) and the compare / regression gate, from hand-made result lines."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from app.cli.root import app
from eval.compare import compare_reports, regressions
from eval.report import write_report


def _records(config: str, exact: list[float]) -> list[dict]:
    return [
        {
            "config": config, "id": f"q{i}", "question": f"question {i}?", "answers": ["yes"], "gold_ids": ["d1"],
            "error": None, "answer": "yes [1]", "wall_ms": 100.0 + i, "compression_ratio": None,
            "scores": {"exact_match": em, "token_f1": em, "abstained": 0.0, "mrr": 1.0, "ndcg@10": 1.0},
            "ranking": [{"chunk_id": "d1#0", "doc_id": "d1"}],
            "context": [{"chunk_id": "d1#0", "doc_id": "d1", "text": "<b>yes</b>"}],
            "citations": [{"id": 1, "doc_id": "d1"}], "stages_ms": {"bm25": 3.0, "dense": 5.0, "generate": 90.0},
            "tokens": {"generate.prompt_tokens": 500.0, "generate.completion_tokens": 20.0},
            "ragas": {"faithfulness": {"value": None, "reason": "unparsable judge output: {"}},
        }
        for i, em in enumerate(exact)
    ]  # fmt: skip


def _run(folder: Path, exact: dict[str, list[float]]) -> Path:
    folder.mkdir(parents=True)
    manifest = {
        "run_id": folder.name, "created": "now", "dataset": "qa.jsonl", "questions": 2, "collection": "sample",
        "generator": "qwen", "configs": {c: {"options": {"fusion_alpha": 0.5}, "note": ""} for c in exact},
        "skipped": [{"name": "+rerank", "reason": "no reranker configured"}],
        "row_errors": [{"line": 3, "reason": "bad"}],
        "judge": {"base_url": "http://127.0.0.1:1/v1", "model": "qwen"},
    }  # fmt: skip
    records = [r for config, values in exact.items() for r in _records(config, values)]
    write_report(folder, manifest, records)
    return folder


def test_report_files_and_tables(tmp_path: Path) -> None:
    folder = _run(tmp_path / "run-a", {"hybrid": [1.0, 0.0], "bm25": [0.0, 0.0]})
    for name in ("report.html", "report.json", "metrics.png", "latency.png", "tokens.png"):
        assert (folder / name).stat().st_size > 0, name
    report = json.loads((folder / "report.json").read_text())
    hybrid = report["summary"]["hybrid"]
    assert hybrid["metrics"]["exact_match"] == 0.5
    assert hybrid["latency_ms"]["generate"]["p50"] == 90.0
    assert hybrid["ragas"]["faithfulness"] == {
        "mean": None, "valid": 0, "judged": 2, "missing_reasons": {"unparsable judge output: {": 2}
    }  # fmt: skip
    html = (folder / "report.html").read_text()
    for table in ('id="metrics"', 'id="ragas"', 'id="latency"', 'id="tokens"'):
        assert table in html
    assert "<td>0.500</td>" in html and "hybrid" in html and "bm25" in html
    assert "+rerank" in html and "line 3: bad" in html
    assert "&lt;b&gt;yes&lt;/b&gt;" in html  # evidence is escaped, not injected
    assert "unparsable judge output" in html


def test_compare_prints_deltas_and_gates_on_regressions(tmp_path: Path) -> None:
    before = _run(tmp_path / "before", {"hybrid": [1.0, 1.0]})
    after = _run(tmp_path / "after", {"hybrid": [1.0, 0.0]})
    deltas = compare_reports(
        json.loads((before / "report.json").read_text()), json.loads((after / "report.json").read_text())
    )
    assert [(d.metric, d.change) for d in regressions(deltas, 0.1)] == [("exact_match", -0.5), ("token_f1", -0.5)]

    runner = CliRunner()
    result = runner.invoke(app, ["eval", "compare", str(before), str(after)])
    assert result.exit_code == 0 and "REGRESSION" in result.output and "-0.500" in result.output
    gated = runner.invoke(
        app, ["eval", "compare", str(before), str(after), "--fail-on-regression", "--tolerance", "0.1"]
    )
    assert gated.exit_code == 1
    tolerant = runner.invoke(
        app, ["eval", "compare", str(before), str(after), "--fail-on-regression", "--tolerance", "0.6"]
    )
    assert tolerant.exit_code == 0 and "no metric regressed" in tolerant.output
    improved = runner.invoke(app, ["eval", "compare", str(after), str(before), "--fail-on-regression"])
    assert improved.exit_code == 0
    missing = runner.invoke(app, ["eval", "compare", str(before), str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "no report for" in missing.output
