"""``ragline eval abstention --scores-only`` and ``ragline eval position`` (app/cli/experiments.py) end to end,
on a small NQ-format folder written by the test (real embedder, real Chroma; the position sweep against the real
vLLM)."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FACTS = [
    ("who wrote the novel moby dick", ["Herman Melville"], "Moby-Dick", "Moby-Dick is a novel by Herman Melville."),
    ("what is the capital of canada", ["Ottawa"], "Ottawa", "Ottawa is the capital city of Canada, in Ontario."),
    ("who painted the mona lisa", ["Leonardo da Vinci"], "Mona Lisa", "The Mona Lisa is by Leonardo da Vinci."),
]
DISTRACTORS = [
    ("The Scarlet Letter", "The Scarlet Letter is an 1850 novel by Nathaniel Hawthorne set in Boston."),
    ("Toronto", "Toronto is the largest city in Canada and the capital of the province of Ontario."),
    ("The Starry Night", "The Starry Night is an oil painting by Vincent van Gogh, painted in June 1889."),
    ("Pride and Prejudice", "Pride and Prejudice is an 1813 novel of manners by Jane Austen."),
    ("Vancouver", "Vancouver is a major city in western Canada, in British Columbia."),
    ("Guernica", "Guernica is a large oil painting by Pablo Picasso, completed in June 1937."),
]


def _nq_folder(folder: Path, facts: list[tuple[str, list[str], str, str]] = FACTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "dev_questions.jsonl").open("w", encoding="utf-8") as out:
        for i, (question, answers, _, _) in enumerate(facts):
            row = {"id": f"q{i}", "question": question, "answers": answers, "gold_passage": f"g{i}"}
            out.write(json.dumps(row) + "\n")
    with gzip.open(folder / "passages.jsonl.gz", "wt", encoding="utf-8") as out:
        for i, (_, _, title, text) in enumerate(facts):
            out.write(json.dumps({"_id": f"g{i}", "title": title, "text": text}) + "\n")
        for i, (title, text) in enumerate(DISTRACTORS):
            out.write(json.dumps({"_id": f"d{i}", "title": title, "text": text}) + "\n")
    return folder


def _ragline(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "app.cli", "eval", *args]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)


def _report(data_dir: Path, name: str) -> dict:
    reports = sorted((data_dir / "reports").glob(f"context-{name}-*.json"))
    assert reports, f"no {name} report in {data_dir / 'reports'}"
    return json.loads(reports[-1].read_text())


def test_abstention_scores_only_suggests_a_cut_from_both_question_sets(tmp_path: Path, models_env) -> None:
    data, data_dir = _nq_folder(tmp_path / "nq"), tmp_path / "data"
    result = _ragline(["abstention", "--data", str(data), "--limit", "1", "--calibrate", "10", "--scores-only"],
                      models_env(data_dir))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "suggested abstain_threshold" in result.stdout
    report = _report(data_dir, "abstention")
    scores = report["scores"]
    assert len(scores["nq gold present"]) == 3 and len(scores["sample off-topic"]) == 15
    assert len(scores["sample answerable"]) + len(scores["sample unanswerable"]) == 30
    # withholding the gold passage (a filter on its id) never raises the best score, and lowers it somewhere
    pairs = list(zip(scores["nq gold present"], scores["nq gold withheld"], strict=True))
    assert all(p >= w for p, w in pairs) and any(p > w for p, w in pairs)
    cut = report["suggested_threshold"]
    assert max(scores["sample off-topic"]) < cut <= min(scores["sample answerable"] + scores["nq gold present"])
    assert "pipeline" not in report


@pytest.mark.vllm
def test_position_sweep_reports_each_slot_with_and_without_edge_positioning(
    tmp_path: Path, models_env, vllm_server
) -> None:
    data, data_dir = _nq_folder(tmp_path / "nq"), tmp_path / "data"
    env = models_env(data_dir, RAGLINE_LLM_BASE_URL=vllm_server.base_url, RAGLINE_LLM_TIMEOUT_S="900")
    both = ["--positioning", "edge", "--positioning", "edge-last"]
    result = _ragline(["position", "--data", str(data), "--limit", "1", "--k", "3", "--workers", "4", *both], env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = _report(data_dir, "position")
    assert [(r["position"], r["k"]) for r in report["results"]] == [("first", 3), ("middle", 3), ("last", 3)]
    assert set(report["edge_vs_gold_first_paired"]) == {"3", "3:edge-last"}
    assert report["edge_vs_gold_first_paired"]["3"]["questions"] == 1
    rows = report["per_question"]["3"]
    assert [r["slot"] for r in rows] == ["first", "middle", "last"]
    for row in rows:
        assert row["answer_without"] and row["answer_with_edge"] and row["answer_with_edge-last"]
        # edge puts the best-scored passage first and the second best last; edge-last mirrors it
        assert row["gold_slot_with_edge"] == {1: 1, 2: 3, 3: 2}[row["gold_rank"]]
        assert row["gold_slot_with_edge-last"] == {1: 3, 2: 1, 3: 2}[row["gold_rank"]]
    # with a positioning stage the input slot no longer matters: one prompt, one answer per stage
    assert len({r["answer_with_edge"] for r in rows}) == 1
    assert len({r["answer_with_edge-last"] for r in rows}) == 1
    # a second run asks nothing again
    again = _ragline(["position", "--data", str(data), "--limit", "1", "--k", "3", *both], env)
    assert again.returncode == 0
    assert re.search(r"k=3: (\d+) distinct prompts, \1 answered by an earlier run", again.stdout)
    wrong = _ragline(["position", "--data", str(data), "--limit", "1", "--k", "3", "--positioning", "middle"], env)
    assert wrong.returncode != 0 and "--positioning takes" in wrong.stderr + wrong.stdout
    # --slot first: the baseline and each stage only, all answered already
    first = _ragline(["position", "--data", str(data), "--limit", "1", "--k", "3", "--slot", "first", *both], env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "k=3: 3 distinct prompts, 3 answered by an earlier run" in first.stdout
    report = _report(data_dir, "position")
    assert [r["position"] for r in report["results"]] == ["first"] and report["slots"] == ["first"]
    assert report["edge_vs_gold_first_paired"]["3"]["questions"] == 1
    bad = _ragline(["position", "--data", str(data), "--limit", "1", "--k", "3", "--slot", "centre"], env)
    assert bad.returncode != 0 and "--slot takes" in bad.stderr + bad.stdout


@pytest.mark.vllm
def test_position_sweep_skips_a_question_whose_answer_is_in_every_passage(
    tmp_path: Path, models_env, vllm_server
) -> None:
    # as in NQ-Open's "atlantic ocean's shape is similar to which english alphabet" (answer "S"): every passage
    # holds an "s", so no answer-free distractor exists and the question is reported as skipped, not a crash
    short = ("which letter is the atlantic ocean shaped like", ["S"], "Atlantic", "The Atlantic is shaped like an S.")
    data, data_dir = _nq_folder(tmp_path / "nq", [short, *FACTS]), tmp_path / "data"
    env = models_env(data_dir, RAGLINE_LLM_BASE_URL=vllm_server.base_url)
    result = _ragline(["position", "--data", str(data), "--limit", "1", "--k", "3", "--slot", "first"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "k=3: 0 distinct prompts" in result.stdout and "skipped 1 questions" in result.stdout
    report = _report(data_dir, "position")
    assert [s["id"] for s in report["skipped"]["3"]] == ["q0"]
    assert report["results"][0]["questions"] == 0 and report["edge_vs_gold_first_paired"] == {}


@pytest.mark.vllm
def test_position_pipeline_runs_are_stored_and_a_rerun_asks_nothing(tmp_path: Path, models_env, vllm_server) -> None:
    data, data_dir = _nq_folder(tmp_path / "nq"), tmp_path / "data"
    env = models_env(data_dir, RAGLINE_LLM_BASE_URL=vllm_server.base_url, RAGLINE_LLM_TIMEOUT_S="900")
    args = ["position", "--data", str(data), "--limit", "2", "--k", "3", "--slot", "first", "--pipeline"]
    first = _ragline(args, env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "pipeline, relevance: 2 questions" in first.stdout and "pipeline, edge: 2 questions" in first.stdout
    report = _report(data_dir, "position")
    assert [r["pipeline"] for r in report["pipeline"]] == ["relevance", "edge"]
    runs = report["per_question_pipeline"]
    assert [r["id"] for r in runs["edge"]] == ["q0", "q1"] and all(r["answer"] for r in runs["edge"])
    assert report["pipeline_edge_vs_relevance_paired"]["questions"] == 2
    # the second run re-runs retrieval and reads every generation back from the stored answers
    again = _ragline(args, env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "pipeline, relevance: 2 questions" in again.stdout
    assert re.search(r"pipeline, relevance: 2 questions in \d+ s, 2 answers from an earlier run", again.stdout)
    assert re.search(r"pipeline, edge: 2 questions in \d+ s, 2 answers from an earlier run", again.stdout)
    rerun = _report(data_dir, "position")["per_question_pipeline"]
    assert [r["answer"] for r in rerun["edge"]] == [r["answer"] for r in runs["edge"]]
