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

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from eval.beir import load_corpus
from eval.bench.common import Clock
from eval.bench.padding import (
    EMBED_MINI_BATCH,
    PADDING_BATCHES,
    PaddingRatios,
    embedder_token_lengths,
    padding_by_batch,
)
from ingest.document import Document
from ingest.job import Chunker, ingest_documents, ingest_path
from retrieval.bm25 import BM25Config
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


def raw_embedder(
    embedder: Embedder, chunker: Chunker, documents: Sequence[Document], label: str = "raw embedder (limit)"
) -> Throughput:
    """The embedder alone on every chunk text in one call (chunking not timed): the rate to measure against."""
    texts = [chunk.text for document in documents for chunk in chunker.chunk(document)]
    with Clock() as clock:
        embedder.embed(texts)
    return Throughput(label, len(documents), len(texts), clock.wall, clock.cpu)


def ours(index: Index, chunker: Chunker, documents: Sequence[Document], batch_documents: int) -> Throughput:
    """Our ingestion job end to end (chunk, embed, Chroma, manifest, BM25) on ``documents``."""
    with Clock() as clock:
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
    with Clock() as clock:
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
    with Clock() as clock:
        summary = ingest_path(index, chunker, folder, "bench-raptor", progress=False)
    if summary.failed:
        first = next(iter(summary.failed.items()))
        raise RuntimeError(f"{len(summary.failed)} documents failed in the RAPTOR build (first: {first})")
    chunks = index.manifest.chunks("bench-raptor")
    return RaptorBuild(
        label,
        chunker.parallel_documents,
        len(summary.added),
        len(chunks),
        sum(1 for chunk in chunks if chunk.level > 0),
        int(getattr(generator, "calls", 0)) - calls_before,
        clock.wall,
    )


def load_documents(corpus: Path, limit: int | None = None) -> list[Document]:
    """The first ``limit`` documents (all by default) of a BEIR ``corpus.jsonl[.gz]``, title above text, as
    ``ragline ingest`` would read them."""
    rows = load_corpus(corpus)
    items = list(rows.items())[:limit] if limit else list(rows.items())
    return [Document(i, f"{d['title']}\n{d['text']}".strip(), {"title": d["title"] or i}) for i, d in items]


@dataclass(frozen=True)
class LlamaIndexSplitter:
    """How the LlamaIndex baseline splits text: our chunk size and overlap, counted in the generator's tokens."""

    chunk_size: int
    chunk_overlap: int
    tokenize: Callable[[str], list[int]]


@dataclass(frozen=True)
class IngestSetup:
    """The parts the ingest bench measures, built by the caller from its settings.

    ``raptor_chunker(n)`` returns a fresh RAPTOR chunker that builds ``n`` documents at once; ``llamaindex`` is
    None to leave the LlamaIndex baseline out."""

    chunker: Chunker
    embedder: Embedder
    embedder_model_dir: Path
    bm25_config: BM25Config
    batch_documents: int
    llamaindex: LlamaIndexSplitter | None
    raptor_chunker: Callable[[int], Chunker]


@dataclass(frozen=True)
class ThroughputComparison:
    """Our ingestion next to the raw embedder run before and after it (their mean is the limit) and LlamaIndex.

    ``llamaindex_error`` says why the LlamaIndex row is missing when the baseline was asked for and failed."""

    padding: PaddingRatios
    before: Throughput
    after: Throughput
    ours: Throughput
    llamaindex: Throughput | None
    llamaindex_error: str | None

    @property
    def limit(self) -> Throughput:
        return mean_rate("raw embedder (limit, mean)", [self.before, self.after])

    @property
    def results(self) -> list[Throughput]:
        """The compared rows: the limit, ours, then LlamaIndex when it ran."""
        return [self.limit, self.ours, *([self.llamaindex] if self.llamaindex else [])]

    @property
    def ours_vs_limit(self) -> float:
        return round(self.ours.chunks_per_s / self.limit.chunks_per_s, 3)

    @property
    def ours_vs_limit_cpu(self) -> float:
        """The raw embedder's CPU seconds over ours: the share of our CPU time that embedding needs."""
        return round(self.limit.cpu_seconds / max(self.ours.cpu_seconds, 1e-9), 3)

    @property
    def ours_vs_llamaindex(self) -> float | None:
        return round(self.ours.chunks_per_s / self.llamaindex.chunks_per_s, 2) if self.llamaindex else None


@dataclass(frozen=True)
class IngestBenchResult:
    """What ``ragline bench ingest`` measured; ``as_report`` is the results file's content."""

    corpus: str
    batch_documents: int
    raptor_folder: Path | None
    raptor: list[RaptorBuild] | None
    throughput: ThroughputComparison | None

    def as_report(self) -> dict[str, object]:
        report: dict[str, object] = {"corpus": self.corpus, "batch_documents": self.batch_documents}
        if self.raptor is not None:
            report["raptor_folder"] = str(self.raptor_folder)
            report["raptor"] = [build.as_dict() for build in self.raptor]
        comparison = self.throughput
        if comparison is None:
            return report
        report["padding_vs_one_sorted_pass"] = comparison.padding.ratios
        if comparison.llamaindex_error is not None:
            report["llamaindex_error"] = comparison.llamaindex_error
        report["raw_runs"] = [comparison.before.as_dict(), comparison.after.as_dict()]
        report["results"] = [row.as_dict() for row in comparison.results]
        report["ours_vs_limit"] = comparison.ours_vs_limit
        report["ours_vs_limit_cpu"] = comparison.ours_vs_limit_cpu
        if comparison.ours_vs_llamaindex is not None:
            report["ours_vs_llamaindex"] = comparison.ours_vs_llamaindex
        return report


IngestEvent = PaddingRatios | Throughput | RaptorBuild
"""What the ingest bench reports as soon as it has it, before the whole run ends."""


def bench_raptor(
    setup: IngestSetup, parallel: Sequence[int], folder: Path, on_event: Callable[[IngestEvent], None]
) -> list[RaptorBuild]:
    """RAPTOR builds of ``folder``, one per ``parallel_documents`` value, each into a fresh index against the same
    LLM server. The first build warms vLLM's prefix cache for the later ones, so list the value you claim is
    faster first: the comparison then errs against it."""
    builds = []
    for value in parallel:
        chunker = setup.raptor_chunker(value)
        with tempfile.TemporaryDirectory(prefix="ragline-bench-raptor-") as scratch:
            index = Index(Path(scratch), setup.embedder, bm25_config=setup.bm25_config)
            build = raptor_build(index, chunker, folder, f"raptor, {value} document(s) at once")
        on_event(build)
        builds.append(build)
    return builds


def compare_throughput(
    setup: IngestSetup, documents: Sequence[Document], corpus: str, on_event: Callable[[IngestEvent], None]
) -> ThroughputComparison:
    """Docs/s and chunks/s of our ingestion (``setup.chunker``) vs the raw embedder and LlamaIndex, same run.

    The raw embedder runs before and after our ingest and the limit is their mean, so load that drifts during the
    run (a shared machine) moves the limit with it. A failing LlamaIndex baseline is recorded, not raised: it
    must not discard the rows measured before it."""
    chunker, embedder = setup.chunker, setup.embedder
    lengths = embedder_token_lengths(setup.embedder_model_dir, [[c.text for c in chunker.chunk(d)] for d in documents])
    padding = PaddingRatios(len(documents), corpus, padding_by_batch(lengths, PADDING_BATCHES, EMBED_MINI_BATCH))
    on_event(padding)
    embedder.embed([d.text for d in documents[:8]])  # load and warm the model outside every measurement
    before = raw_embedder(embedder, chunker, documents, "raw embedder, before")
    on_event(before)
    llamaindex, llamaindex_error = None, None
    with tempfile.TemporaryDirectory(prefix="ragline-bench-") as scratch:
        index = Index(Path(scratch) / "ours", embedder, bm25_config=setup.bm25_config)
        measured = ours(index, chunker, documents, setup.batch_documents)
        on_event(measured)
        after = raw_embedder(embedder, chunker, documents, "raw embedder, after")
        on_event(after)
        if setup.llamaindex is not None:
            splitter = setup.llamaindex
            try:
                llamaindex = llamaindex_pipeline(
                    documents,
                    setup.embedder_model_dir,
                    Path(scratch) / "llama",
                    splitter.chunk_size,
                    splitter.chunk_overlap,
                    splitter.tokenize,
                )
                on_event(llamaindex)
            except Exception as exc:  # a broken baseline must not discard the rows measured before it
                llamaindex_error = f"{type(exc).__name__}: {exc}"
    return ThroughputComparison(padding, before, after, measured, llamaindex, llamaindex_error)


def bench_ingest(
    setup: IngestSetup,
    documents: Sequence[Document],
    *,
    corpus: str,
    raptor_folder: Path | None,
    raptor_parallel: Sequence[int],
    throughput: bool,
    on_event: Callable[[IngestEvent], None] = lambda event: None,
) -> IngestBenchResult:
    """RAPTOR builds of ``raptor_folder`` (when given), then the throughput comparison on ``documents`` (when
    ``throughput``); ``on_event`` hears each measured row as it is measured."""
    raptor = bench_raptor(setup, raptor_parallel, raptor_folder, on_event) if raptor_folder else None
    comparison = compare_throughput(setup, documents, corpus, on_event) if throughput else None
    return IngestBenchResult(corpus, setup.batch_documents, raptor_folder, raptor, comparison)
