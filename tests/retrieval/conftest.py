"""Fixtures shared by the retrieval tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory, embedder_dir: Path) -> Path:
    """A real CrossEncoder folder: the MiniLM encoder with a freshly initialised (seeded) one-logit head.

    Its scores carry no relevance, but they are real model outputs, which is what the rerank stage's contract
    (order by the model's score, record it) and the engine comparisons (onnx against torch) need."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("cross-encoder")
    CrossEncoder(str(embedder_dir), num_labels=1, device="cpu", local_files_only=True).save_pretrained(str(folder))
    return folder
