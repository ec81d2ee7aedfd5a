"""The benchmark building blocks run on a tiny corpus (numbers are printed by `ragline bench`, never asserted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import eval.bench_ingest as bench_ingest
from eval.bench_ingest import llamaindex_pipeline, ours, raw_embedder
from eval.bench_retrieval import build_scale_collection, percentiles, synthesize, time_query_path
from ingest.chunkers.fixed import FixedSizeChunker, load_token_counter
from ingest.document import Document
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.fusion import ConvexFusion
from retrieval.index import Index

TEXTS = [
    f"Abstract {i}. Protein kinase {i % 7} regulates cell growth. Patients in cohort {i} showed lower risk. "
    f"The trial measured outcome {i % 5} over {i} weeks."
    for i in range(40)
]


@pytest.fixture(scope="module")
def embedder(embedder_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(embedder_dir)


def test_synthetic_corpus_has_the_requested_size_and_unit_vectors(embedder: SentenceTransformerEmbedder) -> None:
    vectors = embedder.embed(TEXTS[:10])
    texts, synthetic = synthesize(TEXTS, vectors, 300)
    assert len(texts) == 300 and synthetic.shape == (300, vectors.shape[1])
    assert np.allclose(np.linalg.norm(synthetic, axis=1), 1.0, atol=1e-5)


def test_scale_collection_and_stage_timing(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    texts, vectors = synthesize(TEXTS, embedder.embed(TEXTS), 250)
    index = Index(tmp_path, embedder)
    build_scale_collection(index, "scale", texts, vectors, batch=100, progress=False)
    assert index.counts("scale").consistent and index.counts("scale").chunks == 250
    times = time_query_path(index, "scale", ["protein kinase growth", "cohort risk"], ConvexFusion(0.5), k=10)
    overlapped, sequential = times["overlapped"].summary(), times["sequential"].summary()
    assert set(overlapped) == {"bm25", "embed_query", "dense_search", "search", "fusion", "dedup", "total"}
    assert set(sequential) == {"bm25", "dense", "fusion", "dedup", "total"}
    assert all(stage["n"] == 2 for stage in [*overlapped.values(), *sequential.values()])
    assert percentiles([1.0, 2.0, 3.0])["p50"] == 2.0


def test_ingest_throughput_rows(tmp_path: Path, embedder: SentenceTransformerEmbedder, generator_dir: Path) -> None:
    chunker = FixedSizeChunker(load_token_counter(generator_dir), 64, 8)
    documents = [Document(f"d{i}", text) for i, text in enumerate(TEXTS)]
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
    documents = [Document(f"d{i}", text) for i, text in enumerate(TEXTS[:20])]
    measured = llamaindex_pipeline(documents, embedder.model_dir, tmp_path / "llama", 64, 8, counter)
    client = chromadb.PersistentClient(path=str(tmp_path / "llama"), settings=Settings(anonymized_telemetry=False))
    stored = client.get_collection("llamaindex-bench").count()
    assert measured.documents == 20 and measured.chunks == stored >= 20
