"""``ragline bench ingest``: ingestion throughput next to its physical limit and a stock pipeline, same run.

Three measurements on the same documents: (1) the raw embedder on the exact chunk texts our chunker produces —
the rate no ingestion can beat on this machine, since embedding dominates; (2) our ingestion job end to end
(load, chunk, embed, Chroma, manifest, BM25); (3) LlamaIndex's ``IngestionPipeline`` with the same splitter and
the same embedder writing to Chroma. Ratios against (1) and (3) are what the benchmark reports.

On a shared machine the load drifts during a run, so (1) is measured twice, before and after (2), and the limit
is the mean of the two; each row also carries the process's CPU seconds, which drift far less with other
processes' load than wall time does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.document import Document
from ingest.job import Chunker, ingest_documents, ingest_path
from retrieval.index import Index
from retrieval.protocols import Embedder


@dataclass(frozen=True)
class Throughput:
    label: str
    documents: int
    chunks: int
    seconds: float
    cpu_seconds: float

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
            "cpu_seconds": round(self.cpu_seconds, 2),
        }


def mean_rate(label: str, runs: Sequence[Throughput]) -> Throughput:
    """One row for repeated runs of the same work: their mean wall and CPU time."""
    return Throughput(
        label,
        runs[0].documents,
        runs[0].chunks,
        sum(r.seconds for r in runs) / len(runs),
        sum(r.cpu_seconds for r in runs) / len(runs),
    )


class _Clock:
    """Wall and process CPU time of one measured block."""

    def __enter__(self) -> _Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def raw_embedder(
    embedder: Embedder, chunker: Chunker, documents: Sequence[Document], label: str = "raw embedder (limit)"
) -> Throughput:
    """The embedder alone on every chunk text in one call (chunking not timed): the rate to measure against."""
    texts = [chunk.text for document in documents for chunk in chunker.chunk(document)]
    with _Clock() as clock:
        embedder.embed(texts)
    return Throughput(label, len(documents), len(texts), clock.wall, clock.cpu)


def ours(index: Index, chunker: Chunker, documents: Sequence[Document], batch_documents: int) -> Throughput:
    with _Clock() as clock:
        summary = ingest_documents(
            index, chunker, documents, "bench-ingest", total=len(documents), batch_documents=batch_documents
        )
    return Throughput("ragline ingest", len(summary.added), summary.chunks_written, clock.wall, clock.cpu)


LLAMAINDEX_RUN_DOCUMENTS = 1000  # documents per IngestionPipeline.run (see llamaindex_pipeline)


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
    nodes = 0
    with _Clock() as clock:
        # One run per slice: ChromaVectorStore.add sends up to 41,665 nodes in one call, more than Chroma's
        # SQLite-bound max batch (5,461 here), so the whole SciFact corpus in one run fails inside Chroma.
        for start in range(0, len(inputs), LLAMAINDEX_RUN_DOCUMENTS):
            nodes += len(pipeline.run(documents=inputs[start : start + LLAMAINDEX_RUN_DOCUMENTS]))
    return Throughput("LlamaIndex IngestionPipeline", len(documents), nodes, clock.wall, clock.cpu)


@dataclass(frozen=True)
class RaptorBuild:
    """One RAPTOR ingest of a folder: how long it took and how many summaries (LLM calls) it needed."""

    label: str
    parallel_documents: int
    documents: int
    chunks: int
    summaries: int
    llm_calls: int
    seconds: float

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "label": self.label,
            "parallel_documents": self.parallel_documents,
            "documents": self.documents,
            "chunks": self.chunks,
            "summaries": self.summaries,
            "llm_calls": self.llm_calls,
            "seconds": round(self.seconds, 1),
        }


def raptor_build(index: Index, chunker: Chunker, folder: Path, label: str) -> RaptorBuild:
    """Ingest ``folder`` with a RAPTOR chunker into a fresh collection; LLM calls are read from the chunker's
    generator (``VLLMTextGenerator.calls``), so they are the requests actually sent."""
    generator = getattr(chunker, "generator", None)
    calls_before = int(getattr(generator, "calls", 0))
    with _Clock() as clock:
        summary = ingest_path(index, chunker, folder, "bench-raptor", progress=False)
    if summary.failed:
        first = next(iter(summary.failed.items()))
        raise RuntimeError(f"{len(summary.failed)} documents failed in the RAPTOR build (first: {first})")
    chunks = index.manifest.chunks("bench-raptor")
    return RaptorBuild(
        label,
        int(getattr(chunker, "parallel_documents", 1)),
        len(summary.added),
        len(chunks),
        sum(1 for chunk in chunks if chunk.level > 0),
        int(getattr(generator, "calls", 0)) - calls_before,
        clock.wall,
    )


def padded_tokens(lengths: Sequence[int], mini_batch: int) -> int:
    """Tokens the embedder computes for texts of ``lengths`` in one call: it sorts them by length and pads each
    mini-batch to its longest text (sentence-transformers' ``encode``)."""
    ordered = sorted(lengths, reverse=True)
    return sum(
        max(ordered[i : i + mini_batch]) * len(ordered[i : i + mini_batch]) for i in range(0, len(ordered), mini_batch)
    )


def padding_by_batch(
    lengths_per_document: Sequence[Sequence[int]], batch_documents: Sequence[int], mini_batch: int
) -> dict[int, float]:
    """Padded tokens when the job embeds ``n`` documents per call, relative to one sorted pass over everything.

    Why the job's batches are large: the embedder sorts by length only within a call, so the smaller the call the
    more padding each mini-batch carries; this counts it exactly, with no clock involved."""
    everything = padded_tokens([n for lengths in lengths_per_document for n in lengths], mini_batch)
    out = {}
    for size in batch_documents:
        total = 0
        for start in range(0, len(lengths_per_document), size):
            window = [n for lengths in lengths_per_document[start : start + size] for n in lengths]
            total += padded_tokens(window, mini_batch) if window else 0
        out[size] = total / everything
    return out


def embedder_token_lengths(model_dir: Path, texts_per_document: Sequence[Sequence[str]]) -> list[list[int]]:
    """Each text's length in the embedder's own tokens, capped at its ``max_seq_length`` as ``encode`` does."""
    import json

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    config = model_dir / "sentence_bert_config.json"
    cap = json.loads(config.read_text()).get("max_seq_length", 512) if config.is_file() else 512
    return [
        [min(len(ids), cap) for ids in tokenizer(list(texts))["input_ids"]] if texts else []
        for texts in texts_per_document
    ]
