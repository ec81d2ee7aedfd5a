"""The onnxruntime reranker engines against torch, on a real CrossEncoder folder (MiniLM with a seeded head).

fp32 through onnxruntime must return the torch scores (same tokenisation, truncation and activation); int8 is an
approximation whose agreement is measured here and whose quality ``ragline reranker eval --backends`` reports.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from retrieval.onnx_export import EXPORT_DIR
from retrieval.rerank import CrossEncoderReranker, RerankerError

QUERY = "How long do EU customers have to request a refund?"
PASSAGES = [
    "Refunds: customers in the EU may withdraw within 14 days of delivery.",
    "The office is closed on public holidays.",
    "Ünïcödé naïve café résumé — 0.5 mg/kg ≥ 3×",
    "x",
    " ".join(["A very long passage that the reranker has to truncate at its maximum length."] * 60),
    "Refund requests go through the billing portal; EU law gives two weeks.",
]


@pytest.fixture(scope="module")
def torch_scores(cross_encoder_dir: Path) -> np.ndarray:
    return CrossEncoderReranker(cross_encoder_dir, max_length=64, batch_size=4).score(QUERY, PASSAGES)


def test_onnx_fp32_returns_the_torch_scores(cross_encoder_dir: Path, torch_scores: np.ndarray) -> None:
    onnx = CrossEncoderReranker(cross_encoder_dir, max_length=64, batch_size=4, backend="onnx")
    scores = onnx.score(QUERY, PASSAGES)
    assert scores.shape == (len(PASSAGES),) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, torch_scores, atol=1e-5)
    assert onnx.name.endswith("(onnx)")


def test_onnx_int8_stays_close_to_torch(cross_encoder_dir: Path, torch_scores: np.ndarray) -> None:
    int8 = CrossEncoderReranker(cross_encoder_dir, max_length=64, batch_size=4, backend="onnx-int8")
    scores = int8.score(QUERY, PASSAGES)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert np.abs(logit(scores) - logit(torch_scores)).max() < 0.25
    assert np.all((scores > 0) & (scores < 1))


def test_the_export_is_made_once_and_reused(
    cross_encoder_dir: Path, caplog: pytest.LogCaptureFixture, torch_scores: np.ndarray
) -> None:
    CrossEncoderReranker(cross_encoder_dir, max_length=64, backend="onnx")  # exported by now, whatever ran first
    with caplog.at_level(logging.WARNING, logger="retrieval.onnx_export"):
        again = CrossEncoderReranker(cross_encoder_dir, max_length=64, backend="onnx")
    assert not [r for r in caplog.records if "exporting" in r.getMessage()]
    assert len(list((cross_encoder_dir / EXPORT_DIR).glob("*/model.onnx"))) == 1
    np.testing.assert_allclose(again.score(QUERY, PASSAGES), torch_scores, atol=1e-5)


def test_an_empty_passage_list_scores_nothing(cross_encoder_dir: Path) -> None:
    reranker = CrossEncoderReranker(cross_encoder_dir, max_length=64, backend="onnx-int8")
    assert reranker.score(QUERY, []).shape == (0,)


def test_onnx_needs_a_local_folder_not_a_hub_id() -> None:
    """The onnx engines export files on disk and never fetch a model: a hub id fails at start-up, saying what to do."""
    with pytest.raises(RerankerError, match=r"hub id.*RAGLINE_RERANK_BACKEND=torch"):
        CrossEncoderReranker("ragline-tests/no-such-cross-encoder", backend="onnx-int8")


def test_an_unknown_backend_is_refused(cross_encoder_dir: Path) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        CrossEncoderReranker(cross_encoder_dir, backend="tensorrt")  # type: ignore[arg-type]
