"""``ragline eval select``: chunk size and fusion α chosen on `choose`, reported on `report`, on a tiny BEIR folder
with the real embedder and index (one collection per chunk size)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from retrieval.manifest import Manifest


def _beir_folder(root: Path) -> Path:
    """Six judged queries over 16 documents: enough for a 2/2/2 fit/choose/report split."""
    topics = ["insulin resistance in mice", "solar panel efficiency", "river flood defences", "sourdough starters"]
    folder = root / "tiny"
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as corpus:
        for i in range(16):
            topic = topics[i % 4]
            text = (f"Study {i} on {topic}. We measured outcome {i} in {topic} and report effect size {i / 10}. "
                    f"The {topic} cohort was followed for {i + 2} years across several sites.")  # fmt: skip
            corpus.write(json.dumps({"_id": f"d{i:02}", "title": f"{topic} {i}", "text": text}) + "\n")
    judged = {f"q{n}": (topics[n % 4], f"d{n:02}") for n in range(6)}
    with (folder / "queries.jsonl").open("w") as queries:
        for qid, (topic, doc) in judged.items():
            queries.write(json.dumps({"_id": qid, "text": f"{topic} study {int(doc[1:])}"}) + "\n")
    rows = "".join(f"{qid}\t{doc}\t1\n" for qid, (_, doc) in judged.items())
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return folder


def _select(folder: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "app.cli", "eval", "select", "--beir", str(folder), "--choose", "2",
               "--report", "2", *extra]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_chunk_size_and_alpha_are_chosen_on_choose_and_reported_on_report(tmp_path: Path, models_env) -> None:
    folder = _beir_folder(tmp_path)
    data_dir = tmp_path / "data"
    env = models_env(data_dir)
    out = tmp_path / "select.json"
    run = _select(folder, env, "--chunk-sizes", "32,64", "--alphas", "0.3,0.5", "--json", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["split"]["sizes"] == {"fit": 2, "choose": 2, "report": 2} and report["split"]["seed"] == 13
    assert set(report["table"]) == {f"size={s} α={a}" for s in (256, 32, 64) for a in ("0.50", "0.30")}
    assert report["baseline"] == "size=256 α=0.50" and report["chosen"] in report["table"]
    assert {"choose", "report"} <= set(report["gain_over_baseline"])
    chosen = report["table"][report["chosen"]]
    assert chosen["choose"] == max(row["choose"] for row in report["table"].values())  # chosen on choose alone
    assert len(report["per_query"]["size=32 α=0.30"]) == 4  # choose + report; fit is not scored
    assert report["collections"] == {"256": "beir-tiny", "32": "beir-tiny-cs32", "64": "beir-tiny-cs64"}
    assert report["chunk_overlap"]["32"] == 4  # the configured 32-token overlap does not fit a 32-token chunk
    assert "<- chosen" in run.stdout and "reported on `report`" in run.stdout

    manifest = Manifest(data_dir / "ragline.sqlite")
    try:
        small, default = manifest.chunks("beir-tiny-cs32"), manifest.chunks("beir-tiny")
    finally:
        manifest.close()
    assert len(small) > len(default) == 16  # smaller chunks: more of them; each abstract fits one 256-token chunk

    again = _select(folder, env, "--chunk-sizes", "32,64", "--alphas", "0.3,0.5", "--json", str(out))
    assert again.returncode == 0 and json.loads(out.read_text())["table"] == report["table"]  # reused, same numbers


def test_bad_requests_say_what_is_wrong(tmp_path: Path, models_env) -> None:
    folder = _beir_folder(tmp_path)
    env = models_env(tmp_path / "data")
    rrf = _select(folder, {**env, "RAGLINE_FUSION": "rrf"}, "--chunk-sizes", "64")
    assert rrf.returncode != 0 and "convex-fusion weight" in rrf.stderr + rrf.stdout
    tiny = _select(folder, env, "--chunk-sizes", "8")
    assert tiny.returncode != 0 and "at least 16 tokens" in tiny.stderr + tiny.stdout
    too_many = _select(folder, env, "--choose", "3", "--report", "3")
    assert too_many.returncode != 0 and "must leave queries" in too_many.stderr + too_many.stdout
    assert "Traceback" not in rrf.stderr + tiny.stderr + too_many.stderr
