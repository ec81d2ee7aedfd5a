"""The demo reranker: shipped synthetic questions, mined against the real sample index, trained for real (kept tiny)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from app.reranker.card import read_record
from app.reranker.demo import DEMO_CONFIG, DEMO_RERANKER, is_trained, shipped_queries, train_demo_reranker
from app.resources import Resources
from retrieval.rerank import CrossEncoderReranker


def test_shipped_questions_point_at_chunks_of_the_sample_index(sample_resources: Resources) -> None:
    chunk_ids = {c.id for c in sample_resources.index.manifest.chunks("sample")}
    queries = shipped_queries(chunk_ids)
    assert len(queries) >= 200
    assert all(q.text.endswith("?") and q.relevant_docs for q in queries)
    # The bundled corpus and the default chunker give the same chunk ids as when the questions were written.
    assert sum(1 for q in queries if q.positive_chunks) / len(queries) > 0.9


def test_shipped_questions_fall_back_to_their_document_when_chunk_ids_changed() -> None:
    queries = shipped_queries(set())
    assert queries and all(not q.positive_chunks and len(q.relevant_docs) == 1 for q in queries)


def test_training_writes_a_loadable_reranker_and_is_then_found_trained(
    sample_resources: Resources, tmp_path: Path
) -> None:
    tiny = dataclasses.replace(DEMO_CONFIG, max_steps=1, batch_size=4, max_length=32)
    out = tmp_path / DEMO_RERANKER
    trained = train_demo_reranker(sample_resources, "sample", out=out, config=tiny, progress=False)
    assert not trained.already_present and trained.steps == 1
    assert is_trained(out) and trained.path == out
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == DEMO_CONFIG.layers
    record = read_record(trained.path)
    assert record["data"]["pairs"] > record["data"]["queries"] >= 200
    assert CrossEncoderReranker(trained.path, max_length=32).score("refund window", ["30 days."]).shape == (1,)
    assert train_demo_reranker(sample_resources, "sample", out=out, config=tiny, progress=False).already_present


def test_the_demo_turns_rerank_on_only_when_its_reranker_was_trained(tmp_path: Path, settings_for) -> None:
    from app.cli.services import demo_env as _demo_env

    settings = settings_for(tmp_path / "data", models_dir=tmp_path / "models")
    assert _demo_env(settings).get("RAGLINE_RERANKER") == os.environ.get("RAGLINE_RERANKER")
    folder = tmp_path / "models" / DEMO_RERANKER
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "ragline-reranker.json").write_text("{}")
    assert _demo_env(settings)["RAGLINE_RERANKER"] == str(folder)
    configured = settings_for(tmp_path / "data", models_dir=tmp_path / "models", reranker="my-reranker")
    assert _demo_env(configured).get("RAGLINE_RERANKER") == os.environ.get("RAGLINE_RERANKER")
