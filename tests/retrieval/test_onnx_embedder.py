"""The ONNX query encoder against the real MiniLM embedder: same vectors, routing, a re-export for new weights."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedder import SMALL_BATCH, SentenceTransformerEmbedder
from retrieval.onnx_embedder import OnnxQueryEncoder
from retrieval.onnx_export import EXPORT_DIR, OnnxExportError, ensure_export, export_folder, weights_sha256

QUERIES = [
    "refund policy",
    "How do I reset my password if I no longer have access to my email?",
    "Does vitamin D supplementation reduce the risk of fractures in older adults?",
    "BRCA1 mutation",
    "What is the maximum upload size for attachments in the enterprise plan, and can an admin raise it?",
    "Ünïcödé naïve café résumé",
    "0.5 mg/kg dose ≥ 3 times daily",
    "SSO",
    " ".join(["a very long query that the model has to truncate at its maximum sequence length"] * 40),
]


@pytest.fixture(scope="module")
def torch_embedder(embedder_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(embedder_dir)


def _torch_vectors(embedder: SentenceTransformerEmbedder, texts: list[str]) -> np.ndarray:
    return np.vstack([embedder.embed([text]) for text in texts])


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_fp32_query_vectors_match_torch(embedder_dir: Path, torch_embedder: SentenceTransformerEmbedder) -> None:
    encoder = OnnxQueryEncoder(embedder_dir, "fp32")
    expected = _torch_vectors(torch_embedder, QUERIES)
    single = np.vstack([encoder.embed([q]) for q in QUERIES])
    padded = encoder.embed(QUERIES)  # one padded batch: the mask must keep padding out of the mean
    assert single.shape == (len(QUERIES), torch_embedder.dimension) and single.dtype == np.float32
    assert _cosines(single, expected).min() > 0.999
    assert _cosines(padded, expected).min() > 0.999
    assert np.allclose(np.linalg.norm(single, axis=1), 1.0, atol=1e-5)


def test_int8_query_vectors_stay_close_to_torch(
    embedder_dir: Path, torch_embedder: SentenceTransformerEmbedder
) -> None:
    """Dynamic int8 trades a little agreement for speed: 0.99 minimum cosine on 1,109 SciFact queries."""
    encoder = OnnxQueryEncoder(embedder_dir, "int8")
    cosines = _cosines(np.vstack([encoder.embed([q]) for q in QUERIES]), _torch_vectors(torch_embedder, QUERIES))
    assert cosines.min() > 0.97, cosines
    assert cosines.mean() > 0.985, cosines


def test_embedder_routes_queries_to_onnx_and_batches_to_torch(
    embedder_dir: Path, torch_embedder: SentenceTransformerEmbedder
) -> None:
    onnx = SentenceTransformerEmbedder(embedder_dir, query_backend="onnx-int8")
    query = QUERIES[2]
    # int8 vectors differ from torch's: a query-sized call is int8, a batch is torch's exactly.
    assert not np.array_equal(onnx.embed([query]), torch_embedder.embed([query]))
    batch = QUERIES[: SMALL_BATCH + 1]
    assert np.allclose(onnx.embed(batch), torch_embedder.embed(batch), atol=1e-6)
    assert onnx.embed([]).shape == (0, onnx.dimension)


def test_unknown_backend_is_rejected(embedder_dir: Path) -> None:
    with pytest.raises(ValueError, match="query_backend must be one of torch, onnx, onnx-int8"):
        SentenceTransformerEmbedder(embedder_dir, query_backend="tensorrt")  # type: ignore[arg-type]


def _linked_copy(source: Path, target: Path) -> Path:
    """The model folder as symlinks (no 90 MB copy); callers replace the files they change."""
    target.mkdir()
    for item in source.iterdir():
        if item.name != EXPORT_DIR:
            (target / item.name).symlink_to(item.resolve(), target_is_directory=item.is_dir())
    return target


def test_changed_weights_are_re_exported_and_the_stale_export_removed(
    embedder_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from safetensors.numpy import load_file, save_file

    model = _linked_copy(embedder_dir, tmp_path / "model")
    (model / "model.safetensors").unlink()
    weights = load_file(str(embedder_dir / "model.safetensors"))
    name = next(k for k in weights if k.endswith("embeddings.word_embeddings.weight"))
    weights[name] = weights[name] * np.float32(1.5)  # different weights, still a working model
    save_file(weights, str(model / "model.safetensors"))
    stale = model / EXPORT_DIR / "0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"an export of other weights")

    with caplog.at_level(logging.WARNING, logger="retrieval.onnx_export"):
        encoder = OnnxQueryEncoder(model, "fp32")
    assert "stale export(s) 0123456789abcdef" in caplog.text
    assert not stale.exists()
    assert encoder.export.folder == export_folder(model, weights_sha256(model))
    assert json.loads((encoder.export.folder / "export.json").read_text())["weights_sha256"] == weights_sha256(model)

    changed = SentenceTransformerEmbedder(model)
    original = OnnxQueryEncoder(embedder_dir, "fp32")
    vectors = encoder.embed(QUERIES[:3])
    assert _cosines(vectors, changed.embed(QUERIES[:3])).min() > 0.999  # exported from the new weights ...
    assert _cosines(vectors, original.embed(QUERIES[:3])).min() < 0.999  # ... not the old ones

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="retrieval.onnx_export"):
        assert ensure_export(model, ("fp32",)).folder == encoder.export.folder
    assert caplog.text == ""  # present and current: nothing exported, nothing logged


def test_a_model_that_is_not_mean_pooled_is_refused(embedder_dir: Path, tmp_path: Path) -> None:
    model = _linked_copy(embedder_dir, tmp_path / "cls-model")
    (model / "1_Pooling").unlink()
    (model / "1_Pooling").mkdir()
    config = json.loads((embedder_dir / "1_Pooling" / "config.json").read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (model / "1_Pooling" / "config.json").write_text(json.dumps(config))
    with pytest.raises(OnnxExportError, match="RAGLINE_EMBEDDER_BACKEND=torch"):
        OnnxQueryEncoder(model, "fp32")
    assert not (model / EXPORT_DIR).exists()


def test_missing_weights_name_the_install_command(embedder_dir: Path, tmp_path: Path) -> None:
    model = _linked_copy(embedder_dir, tmp_path / "no-weights")
    (model / "model.safetensors").unlink()
    with pytest.raises(OnnxExportError, match="ragline models install"):
        ensure_export(model)
    shutil.rmtree(model)
