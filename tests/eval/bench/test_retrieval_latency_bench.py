"""The retrieval bench's building blocks on a tiny corpus (numbers are printed by `ragline bench`, never asserted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.bench_wiring import stage_paths
from eval.bench.common import percentiles
from eval.bench.retrieval import build_scale_collection, synthesize, time_query_path
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.fusion import ConvexFusion
from retrieval.index import Index
from tests.eval.bench.conftest import BENCH_TEXTS


def test_synthetic_corpus_has_the_requested_size_and_unit_vectors(embedder: SentenceTransformerEmbedder) -> None:
    vectors = embedder.embed(BENCH_TEXTS[:10])
    texts, synthetic = synthesize(BENCH_TEXTS, vectors, 300)
    assert len(texts) == 300 and synthetic.shape == (300, vectors.shape[1])
    assert np.allclose(np.linalg.norm(synthetic, axis=1), 1.0, atol=1e-5)


def test_scale_collection_and_stage_timing(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    texts, vectors = synthesize(BENCH_TEXTS, embedder.embed(BENCH_TEXTS), 250)
    index = Index(tmp_path, embedder)
    build_scale_collection(index, "scale", texts, vectors, batch=100, progress=False)
    assert index.counts("scale").consistent and index.counts("scale").chunks == 250
    paths = stage_paths(index, ConvexFusion(0.5), k=10)
    times = time_query_path(paths, "scale", ["protein kinase growth", "cohort risk"])
    overlapped, sequential = times["overlapped"].summary(), times["sequential"].summary()
    assert set(overlapped) == {"bm25", "embed_query", "dense_search", "search", "fusion", "dedup", "total"}
    assert set(sequential) == {"bm25", "dense", "fusion", "dedup", "total"}
    assert all(stage["n"] == 2 for stage in [*overlapped.values(), *sequential.values()])
    assert percentiles([1.0, 2.0, 3.0])["p50"] == 2.0
