"""The embed/write overlap behind the ingestion job: order, completeness and failure, on a real index."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from ingest.chunkers.fixed import FixedSizeChunker, load_token_counter
from ingest.document import Document
from ingest.embed_write import EmbedWritePipeline
from ingest.job import chunk_all, ingest_documents
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import DocumentWrite, Index

TEXTS = [
    f"Report {i}. The pump station {i % 5} lifts water to reservoir {i % 3}. Maintenance is due every {i + 2} "
    f"weeks, and the operator logs vibration above {i % 4 + 1} mm/s. Spare seals are kept in store {i % 6}."
    for i in range(24)
]


@pytest.fixture(scope="module")
def embedder(embedder_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(embedder_dir)


@pytest.fixture(scope="module")
def chunker(generator_dir: Path) -> FixedSizeChunker:
    return FixedSizeChunker(load_token_counter(generator_dir), chunk_size=32, chunk_overlap=4)


def _writes(chunker: FixedSizeChunker, documents: list[Document]) -> list[DocumentWrite]:
    return [DocumentWrite(d.doc_id, f"hash-{d.doc_id}", chunker.chunk(d)) for d in documents]


def test_batches_are_written_in_order_and_completely(tmp_path: Path, embedder, chunker) -> None:
    index = Index(tmp_path / "data", embedder)
    documents = [Document(f"d{i:02}", text) for i, text in enumerate(TEXTS)]
    written: list[tuple[int, int]] = []
    with EmbedWritePipeline(index, "c", on_written=lambda d, c: written.append((d, c)), max_in_flight=2) as pipeline:
        for start in range(0, len(documents), 5):
            pipeline.submit(_writes(chunker, documents[start : start + 5]))
    index.commit("c")
    batches = [_writes(chunker, documents[start : start + 5]) for start in range(0, 24, 5)]
    expected = [(len(batch), sum(len(w.chunks) for w in batch)) for batch in batches]
    assert written == expected
    counts = index.counts("c")
    assert counts.consistent and counts.chunks == sum(c for _, c in expected) and counts.documents == 24
    assert all(r.status == "indexed" for r in index.manifest.documents("c"))
    # The vectors stored are the embedder's for each chunk's text: nothing was paired with the wrong batch.
    chunks = index.manifest.chunks("c")
    stored = index.vectors.vectors("c", [c.id for c in chunks])
    assert abs(stored - embedder.embed([c.text for c in chunks])).max() < 1e-4


def test_a_failed_write_stops_the_batches_after_it(tmp_path: Path, embedder, chunker) -> None:
    index = Index(tmp_path / "data", embedder)
    good = _writes(chunker, [Document(f"a{i}", TEXTS[i]) for i in range(3)])
    # A real fault: a second document claiming a0's chunk ids violates the manifest's primary key.
    clash = [DocumentWrite("b0", "h", good[0].chunks)]
    later = _writes(chunker, [Document(f"c{i}", TEXTS[10 + i]) for i in range(3)])
    with pytest.raises(IntegrityError), EmbedWritePipeline(index, "c", max_in_flight=3) as pipeline:
        pipeline.submit(good)
        pipeline.submit(clash)
        pipeline.submit(later)
    documents = {r.doc_id for r in index.manifest.documents("c")}
    assert documents == {"a0", "a1", "a2"}, "a batch after the failure was written"
    assert index.repair("c") == []  # the failed batch's transaction rolled back: nothing is left pending
    assert index.counts("c").consistent


def test_parallel_chunking_keeps_order_and_reasons(chunker, generator_dir: Path) -> None:
    documents = [Document(f"d{i}", text) for i, text in enumerate(TEXTS[:9])] + [Document("blank", "   \n ")]
    pending = [(d, "h", False) for d in documents]
    sequential = chunk_all(chunker, pending)
    parallel_chunker = FixedSizeChunker(load_token_counter(generator_dir), chunk_size=32, chunk_overlap=4)
    parallel_chunker.parallel_documents = 4  # as RAPTOR declares it
    assert chunk_all(parallel_chunker, pending) == sequential
    assert sequential[-1] == "the chunker produced no chunks"


def test_job_result_does_not_depend_on_the_batch_size(tmp_path: Path, embedder, chunker) -> None:
    documents = [Document(f"d{i:02}", text) for i, text in enumerate(TEXTS)]
    ids = []
    for batch in (1, 7, 100):
        index = Index(tmp_path / f"b{batch}", embedder)
        summary = ingest_documents(index, chunker, documents, "c", batch_documents=batch, progress=False)
        assert len(summary.added) == 24 and summary.chunks_written == index.counts("c").chunks
        assert index.counts("c").consistent
        ids.append(index.manifest.chunk_ids("c"))
    assert ids[0] == ids[1] == ids[2]
