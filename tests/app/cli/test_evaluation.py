"""``ragline eval retrieval | qa``, run as a user runs them: flags in, report files and messages out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.resources import Resources
from eval.qa import RunStore
from retrieval.manifest import Manifest

SAMPLE_QA = Path(__file__).resolve().parents[3] / "eval" / "datasets" / "sample_qa.jsonl"


def _beir_folder(root: Path) -> Path:
    topics = ["insulin resistance in mice", "solar panel efficiency", "river flood defences", "sourdough starters"]
    folder = root / "tiny"
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as corpus:
        for i in range(16):
            topic = topics[i % 4]
            text = f"Study {i} on {topic}. We measured outcome {i} in {topic} and report effect size {i / 10}."
            corpus.write(json.dumps({"_id": f"d{i:02}", "title": f"{topic} {i}", "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as queries:
        queries.write(json.dumps({"_id": "q1", "text": "insulin resistance mice study 3"}) + "\n")
        queries.write(json.dumps({"_id": "q2", "text": "river flood defences outcome"}) + "\n")
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td00\t1\nq2\td02\t1\nq2\td06\t1\n")
    return folder


def _eval(folder: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "app.cli", "eval", "retrieval", "--beir", str(folder), "--split", "train"]
    return subprocess.run(command + list(extra), env=env, capture_output=True, text=True, timeout=600)


def test_eval_retrieval_on_a_subset_per_chunker(tmp_path: Path, models_env, cross_encoder_dir: Path) -> None:
    folder = _beir_folder(tmp_path)
    data_dir = tmp_path / "data"
    env = models_env(data_dir)
    out = tmp_path / "report.json"
    run = _eval(folder, env, "--chunker", "fixed", "--corpus-sample", "6", "--pipeline", "hybrid", "--json", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["corpus_documents"] == 6 and report["corpus_subset"]["seed"] == 0
    assert report["collection"] == "beir-tiny-sample6-seed0"
    manifest = Manifest(data_dir / "ragline.sqlite")
    try:
        kept = {r.doc_id for r in manifest.documents(report["collection"])}
    finally:
        manifest.close()
    assert len(kept) == 6 and {"d00", "d02", "d06"} <= kept
    assert report["queries"] == 2 and all(row["queries"] == 2 for row in report["results"].values())
    assert set(report["per_query"]["ndcg@10"]["convex(α=0.50)"]) == {"q1", "q2"}

    modes_out = tmp_path / "modes.json"
    modes = _eval(folder, {**env, "RAGLINE_RERANKER": str(cross_encoder_dir), "RAGLINE_RERANK_CONTEXT_TOKENS": "256"},
                  "--corpus-sample", "6", "--pipeline", "rerank-modes", "--json", str(modes_out))  # fmt: skip
    assert modes.returncode == 0, modes.stderr[-2000:]
    both = json.loads(modes_out.read_text())
    assert list(both["results"]) == ["convex(α=0.50)", "hybrid+rerank", "hybrid+long-rerank"]
    assert {"rerank_p50", "long-rerank_p50"} <= set(both["latency_ms"])  # same candidates, timed side by side

    too_small = _eval(folder, env, "--corpus-sample", "2", "--pipeline", "bm25")
    assert too_small.returncode != 0
    assert "cannot hold the 3 judged" in too_small.stderr + too_small.stdout
    assert "Traceback" not in too_small.stderr
    unknown = _eval(folder, env, "--chunker", "paragraphs", "--pipeline", "bm25")
    assert unknown.returncode != 0 and "--chunker must be one of" in unknown.stderr + unknown.stdout


@pytest.mark.vllm
@pytest.mark.long(135)  # seconds under two xdist workers, 2026-12-04
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
