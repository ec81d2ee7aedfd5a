"""What the bench tests share: a small scientific-abstract corpus and the real embedder, loaded once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.embedder import SentenceTransformerEmbedder

BENCH_TEXTS = [
    f"Abstract {i}. Protein kinase {i % 7} regulates cell growth. Patients in cohort {i} showed lower risk. "
    f"The trial measured outcome {i % 5} over {i} weeks."
    for i in range(40)
]


@pytest.fixture(scope="module")
def embedder(embedder_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(embedder_dir)
