"""``ragline reranker train | eval`` end to end on a tiny BEIR folder: training on the fit part, settings chosen on
the choose part and reported on the report part, the split recorded, then the same selection from the eval command
with latency beside hybrid search's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.reranker.card import read_record
from retrieval.rerank import CrossEncoderReranker

REPO = Path(__file__).resolve().parents[3]


def test_train_and_eval_commands_choose_on_one_part_and_report_on_another(tmp_path: Path, models_env) -> None:
    beir = tmp_path / "tiny"
    (beir / "qrels").mkdir(parents=True)
    docs = {
        "d1": "Refunds: EU customers may request a refund within 30 days of the charge.",
        "d2": "To rotate a gateway token, run nwctl gateway rotate-token for the merchant.",
        "d3": "Meeting notes: the team agreed to move the release to Thursday.",
        "d4": "On-call engineers acknowledge pages within 5 minutes during business hours.",
        "d5": "Invoices are issued on the first day of each month in the customer's currency.",
    }
    questions = {
        "q1": ("How long do EU customers have to ask for a refund?", "d1"),
        "q2": ("Which command rotates a gateway token?", "d2"),
        "q3": ("When was the release moved to?", "d3"),
        "q4": ("How fast must on-call acknowledge a page?", "d4"),
        "q5": ("When are invoices issued?", "d5"),
    }
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in docs.items())
    )
    (beir / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in questions.items())
    )
    (beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, (_, d) in questions.items())
    )
    out = tmp_path / "model"
    options = ["--choose", "1", "--report", "1", "--negatives", "2", "--max-steps", "2", "--batch-size", "4",
               "--max-length", "64", "--lengths", "64"]  # fmt: skip
    command = [sys.executable, "-m", "app.cli", "reranker", "train", "--beir", str(beir), *options, "--out", str(out)]
    result = subprocess.run(
        command, env=models_env(tmp_path / "data"), cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]

    record = read_record(out)
    assert record["training"]["steps"] == 2
    split = record["data"]["split"]
    assert split["seed"] == 13 and split["sizes"] == {"fit": 3, "choose": 1, "report": 1}
    assert record["data"]["queries"] == 3
    evaluation = record["evaluation"]
    assert evaluation["overall"]["baseline"] == "hybrid"
    assert set(evaluation["overall"]["table"]) >= {"hybrid", "len=64 w=0.4", "len=64 calibrated"}
    assert "choose" in result.stdout and "report" in result.stdout and "<- chosen" in result.stdout
    card = (out / "README.md").read_text()
    assert "## Choose / report evaluation" in card and "steps: 2" in card
    CrossEncoderReranker(out, max_length=64)

    report = tmp_path / "eval.json"
    command = [sys.executable, "-m", "app.cli", "reranker", "eval", str(out), "--beir", str(beir), "--lengths", "64,96",
               "--context-lengths", "128", "--top-n", "5,10", "--weights", "0.5", "--alphas", "0.4,0.5",
               "--backends", "torch,onnx-int8", "--latency-queries", "1", "--json", str(report)]  # fmt: skip
    result = subprocess.run(
        command, env=models_env(tmp_path / "data"), cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = json.loads(report.read_text())
    assert evaluated["split"] == split
    assert evaluated["top_n"] == [5, 10] and "top 5 or 10 (chosen) reranked" in result.stdout
    assert set(evaluated["overall"]["table"]) == {"hybrid"} | {
        f"{scorer} n={depth} {blend}"
        for scorer in ("len=64", "len=96", "long=128")
        for depth in (5, 10)
        for blend in ("w=0.5", "calibrated")
    }  # each rerank depth is one more candidate of the same choice
    assert evaluated["latency_mode"] in ("isolated", "long-context")
    assert set(evaluated["alpha"]["table"]) == {"α=0.40", "α=0.50"}
    assert set(evaluated["latency"]) == {"torch top-20", "onnx-int8 top-20", "torch top-50", "onnx-int8 top-50"}
    assert evaluated["hybrid_search_p50_ms"] > 0 and set(evaluated["rerank_to_search_ratio"]) == set(
        evaluated["latency"]
    )

    # The protocol's last step: the recipe retrained on fit + choose, scored on report with the settings chosen
    # for the fit-only model. One choose query cannot separate the candidates (hybrid may win it), so the twin's
    # record is given a reranker candidate of its own table as the winner before the refit reads it.
    record = read_record(out)
    record["evaluation"] = evaluated
    record["evaluation"]["overall"]["chosen"] = "len=64 n=5 w=0.5"
    (out / "ragline-reranker.json").write_text(json.dumps(record))
    refit = tmp_path / "refit"
    command = [sys.executable, "-m", "app.cli", "reranker", "train", "--beir", str(beir), "--refit-of", str(out),
               "--out", str(refit)]  # fmt: skip
    result = subprocess.run(
        command, env=models_env(tmp_path / "data"), cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    refitted = read_record(refit)
    assert refitted["refit_of"] == {"model": str(out), "chosen": "len=64 n=5 w=0.5", "mode": "isolated",
                                    "length": 64, "top_n": 5, "weight": 0.5}  # fmt: skip
    assert refitted["data"]["queries"] == 4 and refitted["data"]["split"] == split  # fit 3 + choose 1; same split
    assert refitted["training"]["steps"] == 2 and refitted["training"]["max_length"] == 64  # the twin's recipe
    overall = refitted["evaluation"]["overall"]
    assert overall["fixed"] and overall["chosen"] == "len=64 w=0.5"
    assert set(overall["table"]) == {"hybrid", "len=64 w=0.5"} and "<- fixed" in result.stdout
    assert "a refit" in (refit / "README.md").read_text()
    assert "rerank_max_length = 64" in result.stdout and "rerank_top_n = 5" in result.stdout  # how to run it
    assert f"RAGLINE_RERANKER={refit} RAGLINE_RERANK_MODE=isolated" in result.stdout

    command = [sys.executable, "-m", "app.cli", "reranker", "eval", str(refit), "--beir", str(beir), "--lengths", "96",
               "--backends", "onnx-int8", "--latency-queries", "1", "--json", str(report)]  # fmt: skip
    result = subprocess.run(
        command, env=models_env(tmp_path / "data"), cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "candidate options are not used" in result.stdout + result.stderr
    assert set(json.loads(report.read_text())["overall"]["table"]) == {"hybrid", "len=64 w=0.5"}

    command = [sys.executable, "-m", "app.cli", "reranker", "train", "--beir", str(beir), "--refit-of", str(refit),
               "--out", str(tmp_path / "again")]  # fmt: skip
    result = subprocess.run(command, env=models_env(tmp_path / "data"), cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0 and "is itself a refit" in result.stderr
