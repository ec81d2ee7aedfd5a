"""Per-chunker retrieval evaluation on a documented corpus subset: the subset rule and `ragline eval retrieval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval.corpus_subset import corpus_subset
from retrieval.manifest import Manifest

QRELS = {"q1": {"d03": 1}, "q2": {"d07": 1, "d11": 1}}


def test_subset_keeps_every_judged_document_and_is_reproducible() -> None:
    ids = [f"d{i:02}" for i in range(20)]
    subset = corpus_subset(ids, QRELS, 8, seed=0)
    assert len(subset) == 8 and {"d03", "d07", "d11"} <= set(subset)
    assert subset == sorted(subset, key=ids.index), "corpus order is kept"
    assert corpus_subset(ids, QRELS, 8, seed=0) == subset
    assert corpus_subset(ids, QRELS, 8, seed=1) != subset
    assert corpus_subset(ids, QRELS, 50) == ids


def test_subset_rejects_sizes_that_drop_judged_documents() -> None:
    with pytest.raises(ValueError, match="cannot hold the 3 judged"):
        corpus_subset([f"d{i:02}" for i in range(20)], QRELS, 2)
    with pytest.raises(ValueError, match="not in the corpus"):
        corpus_subset(["d03", "d07"], QRELS, 5)


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


def test_eval_retrieval_on_a_subset_per_chunker(tmp_path: Path, models_env) -> None:
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

    too_small = _eval(folder, env, "--corpus-sample", "2", "--pipeline", "bm25")
    assert too_small.returncode != 0
    assert "cannot hold the 3 judged" in too_small.stderr + too_small.stdout
    assert "Traceback" not in too_small.stderr
    unknown = _eval(folder, env, "--chunker", "paragraphs", "--pipeline", "bm25")
    assert unknown.returncode != 0 and "--chunker must be one of" in unknown.stderr + unknown.stdout
