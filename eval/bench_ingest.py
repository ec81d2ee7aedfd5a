"""``ragline bench ingest``: ingestion throughput next to its physical limit and a stock pipeline, same run.

Three measurements on the same documents: (1) the raw embedder on the exact chunk texts our chunker produces —
the rate no ingestion can beat on this machine, since embedding dominates; (2) our ingestion job end to end
(load, chunk, embed, Chroma, manifest, BM25); (3) LlamaIndex's ``IngestionPipeline`` with the same splitter and
the same embedder writing to Chroma. Ratios against (1) and (3) are what the benchmark reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.document import Document
from ingest.job import Chunker, ingest_documents
from retrieval.index import Index
from retrieval.types import Embedder


@dataclass(frozen=True)
class Throughput:
    label: str
    documents: int
    chunks: int
    seconds: float

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.seconds

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "label": self.label,
            "documents": self.documents,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 2),
            "docs_per_s": round(self.docs_per_s, 2),
            "chunks_per_s": round(self.chunks_per_s, 2),
        }


def raw_embedder(embedder: Embedder, chunker: Chunker, documents: Sequence[Document]) -> Throughput:
    texts = [chunk.text for document in documents for chunk in chunker.chunk(document)]
    started = time.perf_counter()
    embedder.embed(texts)
    return Throughput("raw embedder (limit)", len(documents), len(texts), time.perf_counter() - started)


def ours(index: Index, chunker: Chunker, documents: Sequence[Document], batch_documents: int) -> Throughput:
    started = time.perf_counter()
    summary = ingest_documents(
        index, chunker, documents, "bench-ingest", total=len(documents), batch_documents=batch_documents
    )
    elapsed = time.perf_counter() - started
    return Throughput("ragline ingest", len(summary.added), summary.chunks_written, elapsed)


def llamaindex_pipeline(
    documents: Sequence[Document],
    embedder_dir: Path,
    persist_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    tokenize: Callable[[str], list[int]],
) -> Throughput:
    """LlamaIndex's stock ingestion: SentenceSplitter → HuggingFaceEmbedding → ChromaVectorStore."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Document as LlamaDocument
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.PersistentClient(path=str(persist_dir), settings=ChromaSettings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("llamaindex-bench", embedding_function=None)
    pipeline = IngestionPipeline(
        transformations=[
            SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=tokenize),
            HuggingFaceEmbedding(model_name=str(embedder_dir), device="cpu"),
        ],
        vector_store=ChromaVectorStore(chroma_collection=collection),
    )
    inputs = [LlamaDocument(text=d.text, id_=d.doc_id, metadata=dict(d.metadata)) for d in documents]
    started = time.perf_counter()
    nodes = pipeline.run(documents=inputs)
    return Throughput("LlamaIndex IngestionPipeline", len(documents), len(nodes), time.perf_counter() - started)
