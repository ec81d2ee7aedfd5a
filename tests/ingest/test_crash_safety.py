"""kill -9 a real ingestion process at random points, then rerun: the index must equal a clean ingest.

Each round first edits a few documents (so there is replacement work: stale vectors, pending rows), starts
`ragline ingest` as a subprocess, waits until it has committed a random number of manifest writes plus a random
delay, and kills it with SIGKILL. After the last round a normal run must leave exactly the state a clean ingest of
the final corpus produces: same chunk ids and hashes, and Chroma, BM25 and the manifest agreeing on counts.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.samples import sample_corpus_dir
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import Index
from retrieval.manifest import Manifest

KILLS = 6
"""Six random kill points (with edits between them) cover the same ground as ten did; each round is a `ragline
ingest` start-up, about 12 s of the suite."""


def _ingest_command(corpus: Path) -> list[str]:
    return [sys.executable, "-m", "app.cli", "ingest", str(corpus), "--collection", "crash"]


def _manifest_progress(data_dir: Path) -> tuple[int, float]:
    try:
        with sqlite3.connect(data_dir / "ragline.sqlite", timeout=1) as db:
            row = db.execute("SELECT count(*), coalesce(max(updated_at), 0) FROM documents").fetchone()
            return int(row[0]), float(row[1])
    except sqlite3.Error:
        return 0, 0.0


def _kill_mid_ingest(command: list[str], env: dict[str, str], data_dir: Path, rng: random.Random) -> bool:
    """Run ``command`` and SIGKILL it after a random number of manifest writes; False if it finished first."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    writes_to_wait, last, seen = rng.randint(1, 6), _manifest_progress(data_dir), 0
    deadline = time.monotonic() + 300
    while process.poll() is None and seen < writes_to_wait and time.monotonic() < deadline:
        time.sleep(0.02)
        now = _manifest_progress(data_dir)
        if now != last:
            seen, last = seen + 1, now
    time.sleep(rng.uniform(0.0, 0.6))
    if process.poll() is not None:
        return False
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return True


def _edit_some_documents(corpus: Path, rng: random.Random, round_: int) -> None:
    editable = sorted(p for p in corpus.rglob("*") if p.suffix in {".md", ".txt"})
    for path in rng.sample(editable, 5):
        with path.open("a") as handle:
            handle.write(f"\n\nRevision {round_}: reviewed by the documentation team, no change of substance.\n")


def _state(data_dir: Path) -> tuple[set[str], dict[str, str]]:
    manifest = Manifest(data_dir / "ragline.sqlite")
    try:
        documents = manifest.documents("crash")
        assert all(record.status == "indexed" for record in documents)
        return set(manifest.chunk_ids("crash", indexed_only=False)), {r.doc_id: r.content_hash for r in documents}
    finally:
        manifest.close()


@pytest.mark.long(170)  # seconds under two xdist workers, 2026-12-04
def test_random_kills_then_rerun_equal_a_clean_ingest(tmp_path: Path, embedder_dir: Path, models_env) -> None:
    corpus = tmp_path / "corpus"
    for copy in range(2):
        shutil.copytree(sample_corpus_dir(), corpus / f"copy{copy}")
    crashed_dir = tmp_path / "crashed"
    env = models_env(crashed_dir, RAGLINE_INGEST_BATCH_DOCUMENTS="2")
    rng = random.Random(20261128)

    kills = 0
    for round_ in range(KILLS):
        if round_:
            _edit_some_documents(corpus, rng, round_)
        kills += _kill_mid_ingest(_ingest_command(corpus), env, crashed_dir, rng)
    assert kills >= KILLS - 2, f"only {kills} of {KILLS} runs were killed mid-ingest"

    final = subprocess.run(_ingest_command(corpus), env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    clean_dir = tmp_path / "clean"
    clean_env = models_env(clean_dir)
    clean = subprocess.run(_ingest_command(corpus), env=clean_env, capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr[-2000:]

    assert _state(crashed_dir) == _state(clean_dir)
    index = Index(crashed_dir, SentenceTransformerEmbedder(embedder_dir))
    counts = index.counts("crash")
    expected_ids, _ = _state(clean_dir)
    assert counts.consistent and counts.chunks == len(expected_ids), counts
    assert index.vectors.ids("crash") == expected_ids
