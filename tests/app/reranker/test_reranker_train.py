"""Training a reranker for real, kept tiny: hard negatives from the sample index, a few optimiser steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.reranker.data import LabelledQuery, Pair, mine_pairs, split_queries
from app.reranker.synthetic import PROMPTS, clean_question, synthetic_questions
from app.reranker.train import TrainConfig, group_by_query, last_checkpoint, train_cross_encoder
from app.resources import Resources
from retrieval.onnx_export import export_folder, weights_sha256
from retrieval.rerank import CrossEncoderReranker

REPO = Path(__file__).resolve().parents[3]
TINY = {"batch_size": 4, "max_length": 64, "save_steps": 1}


def _sample_queries() -> list[LabelledQuery]:
    records = [json.loads(line) for line in (REPO / "eval/datasets/sample_qa.jsonl").read_text().splitlines()]
    return [LabelledQuery(r["id"], r["question"], frozenset(r["doc_ids"])) for r in records if r["doc_ids"]][:6]


def test_hard_negatives_come_from_other_documents(sample_resources: Resources) -> None:
    queries = _sample_queries()
    mined = mine_pairs(
        sample_resources.index, sample_resources.settings, "sample", queries, negatives=2, progress=False
    )
    assert mined.queries == len(queries) and mined.skipped == 0
    assert mined.negatives == 2 * len(queries)
    chunks = {c.text: c.doc_id for c in sample_resources.index.manifest.chunks("sample")}
    by_question = {q.text: q for q in queries}
    for pair in mined.pairs:
        relevant = chunks[pair.passage] in by_question[pair.query].relevant_docs
        assert relevant == (pair.label == 1.0)


def test_tiny_training_saves_a_loadable_reranker_and_resumes(
    sample_resources: Resources, embedder_dir: Path, tmp_path: Path
) -> None:
    mined = mine_pairs(
        sample_resources.index, sample_resources.settings, "sample", _sample_queries(), negatives=2, progress=False
    )
    out = tmp_path / "reranker"

    first = train_cross_encoder(
        embedder_dir, mined.pairs, out, TrainConfig(max_steps=2, **TINY), progress=False, keep_checkpoints=True
    )
    assert (first.steps, first.resumed_from) == (2, None)
    assert last_checkpoint(out) == out / "checkpoints" / "checkpoint-2"

    resumed = train_cross_encoder(embedder_dir, mined.pairs, out, TrainConfig(max_steps=3, **TINY), progress=False)
    assert (resumed.steps, resumed.resumed_from) == (3, "checkpoint-2")
    assert not (out / "checkpoints").exists()

    reranker = CrossEncoderReranker(out, max_length=64)
    assert reranker.score("refund window", ["EU customers have 30 days.", "Rotate the token."]).shape == (2,)


def test_a_truncated_reranker_saves_and_loads_with_its_fewer_layers(
    sample_resources: Resources, embedder_dir: Path, tmp_path: Path
) -> None:
    mined = mine_pairs(
        sample_resources.index, sample_resources.settings, "sample", _sample_queries()[:2], negatives=1, progress=False
    )
    out = tmp_path / "small"
    train_cross_encoder(embedder_dir, mined.pairs, out, TrainConfig(max_steps=1, layers=2, **TINY), progress=False)
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2
    reranker = CrossEncoderReranker(out, max_length=64)
    assert reranker.score("refund window", ["EU customers have 30 days."]).shape == (1,)
    # training leaves the ONNX exports of the final weights, so the default engine loads without exporting
    exported = export_folder(out, weights_sha256(out))
    assert (exported / "model.onnx").is_file() and (exported / "model-int8.onnx").is_file()
    onnx = CrossEncoderReranker(out, max_length=64, backend="onnx")
    assert onnx.score("refund window", ["EU customers have 30 days."]) == pytest.approx(
        reranker.score("refund window", ["EU customers have 30 days."]), abs=1e-5
    )
    with pytest.raises(ValueError, match="layers must be between 1 and"):
        train_cross_encoder(embedder_dir, mined.pairs, tmp_path / "x", TrainConfig(max_steps=1, layers=99, **TINY))


def test_split_is_fixed_by_seed() -> None:
    qids = [f"q{i}" for i in range(20)]
    train, held = split_queries(qids, 5, seed=7)
    assert (train, held) == split_queries(list(reversed(qids)), 5, seed=7)
    assert len(held) == 5 and not set(train) & set(held) and set(train) | set(held) == set(qids)
    with pytest.raises(ValueError, match="held_out"):
        split_queries(qids, 20, seed=7)


def test_generated_questions_are_cleaned_or_dropped() -> None:
    assert clean_question('Question: "What is the EU refund window?"\nExtra') == "What is the EU refund window?"
    assert clean_question("Refund window.") is None
    assert clean_question("") is None


@pytest.mark.vllm
def test_synthetic_questions_from_the_live_model_in_several_styles(live_resources: Resources) -> None:
    """The real vLLM writes two questions (two styles) per sampled chunk; each is checked against hybrid search."""
    records = synthetic_questions(live_resources, "sample", 3, per_chunk=2, seed=5)
    assert len(records) == 6
    assert [r["style"] for r in records] == [0, 1, 0, 1, 0, 1]
    assert len({r["chunk_id"] for r in records}) == 3
    written = [r for r in records if r["question"]]
    assert written, "the generator wrote no usable question"
    assert all(r["question"].endswith("?") for r in written)
    assert all(not r["kept"] for r in records if not r["question"])


def test_per_chunk_is_bounded_by_the_styles(sample_resources: Resources) -> None:
    with pytest.raises(ValueError, match="per_chunk"):
        synthetic_questions(sample_resources, "sample", 3, per_chunk=len(PROMPTS) + 1)


def test_list_losses_see_each_query_as_one_list_with_a_positive_and_a_negative() -> None:
    pairs = [Pair("a", "p1", 1.0), Pair("b", "n1", 0.0), Pair("a", "n2", 0.0), Pair("a", "n3", 0.0),
             Pair("c", "p2", 1.0)]  # fmt: skip
    assert group_by_query(pairs) == [("a", ["p1", "n2", "n3"], [1.0, 0.0, 0.0])]


@pytest.mark.parametrize("loss", ["lambda", "ranknet"])
def test_a_list_loss_trains_a_loadable_reranker(
    loss: str, sample_resources: Resources, embedder_dir: Path, tmp_path: Path
) -> None:
    mined = mine_pairs(
        sample_resources.index, sample_resources.settings, "sample", _sample_queries()[:4], negatives=2, progress=False
    )
    out = tmp_path / loss
    result = train_cross_encoder(
        embedder_dir,
        mined.pairs,
        out,
        TrainConfig(max_steps=1, layers=1, loss=loss, **TINY),
        progress=False,  # type: ignore[arg-type]
    )
    assert result.steps == 1 and np.isfinite(result.training_loss)
    scores = CrossEncoderReranker(out, max_length=64).score("refund window", ["EU customers have 30 days.", "x"])
    assert scores.shape == (2,)
    with pytest.raises(ValueError, match="loss must be one of"):
        train_cross_encoder(embedder_dir, mined.pairs, tmp_path / "x", TrainConfig(max_steps=1, loss="hinge", **TINY))  # type: ignore[arg-type]
