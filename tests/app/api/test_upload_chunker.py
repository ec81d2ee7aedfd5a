"""The upload job's chunker wrapper keeps what the ingestion job reads from the chunker it wraps."""

from __future__ import annotations

from app.api.jobs import _CountingChunker
from ingest.chunkers.fixed import FixedSizeChunker
from ingest.document import Document


def _words(text: str) -> list[int]:
    """A word-count tokenizer: enough for sentence-aware splitting by size."""
    return list(range(len(text.split())))


class _ParallelChunker:
    """Stands in for RAPTOR's one relevant trait (it declares parallel_documents); chunking delegates to fixed."""

    name = "parallel"
    signature = "parallel"
    parallel_documents = 16

    def __init__(self) -> None:
        self.inner = FixedSizeChunker(_words, chunk_size=64, chunk_overlap=0)

    def chunk(self, document: Document):
        return self.inner.chunk(document)


def test_the_wrapper_passes_on_parallel_documents_and_counts_chunks() -> None:
    counted: list[int] = []
    wrapper = _CountingChunker(_ParallelChunker(), counted.append)
    assert wrapper.parallel_documents == 16
    document = Document(doc_id="a.md", text="One sentence here. " * 60, metadata={})
    chunks = wrapper.chunk(document)
    assert counted == [len(chunks)] and chunks


def test_a_plain_chunker_builds_one_document_at_a_time() -> None:
    assert _CountingChunker(FixedSizeChunker(_words, chunk_size=64, chunk_overlap=0), print).parallel_documents == 1
