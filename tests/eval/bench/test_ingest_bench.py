"""The ingest bench's throughput rows on a tiny corpus (numbers are printed by `ragline bench`, never asserted) and
its LlamaIndex baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

import eval.bench.ingest as bench_ingest
from eval.bench.ingest import llamaindex_pipeline, ours, raw_embedder
from ingest.chunkers.fixed import FixedSizeChunker, load_token_counter
from ingest.document import Document
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import Index
from tests.eval.bench.conftest import BENCH_TEXTS


def test_ingest_throughput_rows(tmp_path: Path, embedder: SentenceTransformerEmbedder, generator_dir: Path) -> None:
    chunker = FixedSizeChunker(load_token_counter(generator_dir), 64, 8)
    documents = [Document(f"d{i}", text) for i, text in enumerate(BENCH_TEXTS)]
    limit = raw_embedder(embedder, chunker, documents)
    measured = ours(Index(tmp_path, embedder), chunker, documents, batch_documents=16)
    assert limit.chunks == measured.chunks and measured.documents == len(documents)
    assert measured.as_dict()["chunks_per_s"] > 0


def test_llamaindex_baseline_ingests_in_slices_and_keeps_every_node(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, generator_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corpus larger than one slice goes through several IngestionPipeline runs into one Chroma collection
    (one run of the whole SciFact corpus overflows Chroma's max batch)."""
    import chromadb
    from chromadb.config import Settings

    monkeypatch.setattr(bench_ingest, "LLAMAINDEX_RUN_DOCUMENTS", 7)
    counter = load_token_counter(generator_dir)
    documents = [Document(f"d{i}", text) for i, text in enumerate(BENCH_TEXTS[:20])]
    measured = llamaindex_pipeline(documents, embedder.model_dir, tmp_path / "llama", 64, 8, counter)
    client = chromadb.PersistentClient(path=str(tmp_path / "llama"), settings=Settings(anonymized_telemetry=False))
    stored = client.get_collection("llamaindex-bench").count()
    assert measured.documents == 20 and measured.chunks == stored >= 20
