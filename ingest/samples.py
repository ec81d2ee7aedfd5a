"""The sample corpus shipped inside the package: what ``ragline demo`` ingests and many tests use."""

from __future__ import annotations

from pathlib import Path

SAMPLE_COLLECTION = "sample"
"""The collection the sample corpus is ingested into by default."""


def sample_corpus_dir() -> Path:
    """The folder of the bundled sample corpus (package data of ``ingest``)."""
    return Path(__file__).resolve().parent / "sample_corpus"
