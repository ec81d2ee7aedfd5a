"""The ingestion job: discover files, load, chunk, and write changed documents to the index in batches.

Incremental by content hash: unchanged documents are skipped, changed ones replaced, and with ``prune`` those
no longer present are deleted. The index's write order makes every batch crash-safe; the job starts with a
repair, so a rerun after a kill finishes what the killed run started.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from ingest.document import Document
from ingest.embed_write import EmbedWritePipeline
from ingest.loaders import LoadError, discover, load_document
from retrieval.index import DocumentWrite, Index
from retrieval.protocols import TextGenerationError
from retrieval.types import Chunk

log = logging.getLogger(__name__)


class Chunker(Protocol):
    """A chunking strategy as the ingestion job uses it.

    ``name`` is recorded in every chunk's metadata. ``signature`` says how documents are chunked (strategy and
    parameters): it enters each document's index hash, so switching chunkers re-chunks the collection instead of
    silently mixing strategies. ``parallel_documents`` is how many documents ``chunk_all`` chunks at once: 1 for
    CPU-bound chunkers, more for one that waits on a service (RAPTOR's summaries).
    """

    name: str
    signature: str
    parallel_documents: int

    def chunk(self, document: Document) -> list[Chunk]: ...


def index_hash(document: Document, chunker: Chunker) -> str:
    """What decides whether a document must be re-indexed: its content and how it is chunked. Switching a
    collection to another chunker (or chunk size) therefore re-chunks every document on the next ingest."""
    return hashlib.sha256(f"{document.content_hash}\0{chunker.signature}".encode()).hexdigest()


@dataclass
class IngestSummary:
    collection: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    chunks_written: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "added": len(self.added),
            "updated": len(self.updated),
            "skipped": len(self.skipped),
            "deleted": len(self.deleted),
            "failed": self.failed,
            "chunks_written": self.chunks_written,
            "seconds": round(self.seconds, 2),
        }


def _reject_reason(path: Path, root: Path, max_bytes: int) -> str | None:
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(root.resolve()):
            return f"symlink points outside the ingestion root ({target})"
    size = path.stat().st_size
    if size > max_bytes:
        return f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit (RAGLINE_MAX_FILE_MB)"
    if size == 0:
        return "empty file"
    return None


@dataclass(frozen=True)
class LoadFailure:
    """A source that could not become a document, with the reason shown to the user."""

    doc_id: str
    reason: str


def load_file(path: Path, root: Path, extra_metadata: Mapping[str, Any] | None = None) -> Document | LoadFailure:
    """One file as a document, or as its failure: the per-file boundary every ingest (CLI, API upload) loads through.

    Whatever a loader raises, short of an interrupt, becomes this file's failure with a short reason, so one
    hostile file (nested thousands deep, a decompression bomb, a parser bug) never stops the batch. Reasons name
    the file by its id, never by the path it has on this machine: for an upload that is a server folder.
    """
    doc_id = path.relative_to(root).as_posix()
    try:
        return load_document(path, root, extra_metadata)
    except LoadError as exc:
        reason = exc.reason
    except OSError as exc:
        reason = f"cannot read: {exc.strerror or exc}"
    except RecursionError:
        reason = f"nested too deeply to parse (Python's recursion limit is {sys.getrecursionlimit()})"
    except MemoryError:
        reason = "too large to load into memory"
    except Exception as exc:  # a loader's library failing on input it does not expect; the log has the traceback
        log.warning("loading %s failed", doc_id, exc_info=True)
        reason = f"could not be read ({type(exc).__name__} in the {path.suffix.lower() or 'file'} loader)"
    return LoadFailure(doc_id, _without_server_paths(reason, path, doc_id))


def _without_server_paths(reason: str, path: Path, doc_id: str) -> str:
    """``reason`` with the file's path, as some libraries quote it in their errors, shown as the file's id."""
    for form in sorted({str(path.resolve()), str(path.absolute()), str(path)}, key=len, reverse=True):
        reason = reason.replace(form, doc_id)
    return reason


def _load_files(
    root: Path, extra_metadata: Mapping[str, Any] | None, max_bytes: int
) -> Iterator[Document | LoadFailure]:
    base = root if root.is_dir() else root.parent
    for path in discover(root):
        reason = _reject_reason(path, base, max_bytes)
        if reason:
            yield LoadFailure(path.relative_to(base).as_posix(), reason)
            continue
        yield load_file(path, base, extra_metadata)


def ingest_path(
    index: Index,
    chunker: Chunker,
    root: Path,
    collection: str,
    *,
    prune: bool = False,
    extra_metadata: Mapping[str, Any] | None = None,
    max_file_mb: float = 50.0,
    batch_documents: int = 32,
    progress: bool = True,
) -> IngestSummary:
    """Ingest a file or a folder; doc ids are paths relative to the folder."""
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    paths = sum(1 for _ in discover(root))
    return ingest_documents(
        index,
        chunker,
        _load_files(root, extra_metadata, int(max_file_mb * 1e6)),
        collection,
        total=paths,
        prune=prune,
        batch_documents=batch_documents,
        progress=progress,
    )


def ingest_documents(
    index: Index,
    chunker: Chunker,
    documents: Iterable[Document | LoadFailure],
    collection: str,
    *,
    total: int | None = None,
    prune: bool = False,
    batch_documents: int = 32,
    progress: bool = True,
) -> IngestSummary:
    """Index documents from any source (files, a BEIR corpus, an upload): skip unchanged, replace changed,
    and with ``prune`` delete the known documents this run did not see.

    Three stages overlap (see ``ingest.embed_write``): this thread reads and chunks batch N+2 while one thread embeds
    batch N+1 and another writes batch N. Writes stay strictly in order, one batch at a time, through
    ``Index.write``, so the crash-safe write order and the repair on the next run are exactly those of a
    sequential job."""
    started = time.perf_counter()
    summary = IngestSummary(collection=collection)
    rolled_back = index.repair(collection)
    if rolled_back:
        log.warning("rolled back %d interrupted document(s); they are ingested again now", len(rolled_back))
    seen: set[str] = set()
    pending: list[tuple[Document, str, bool]] = []  # (document, index hash, replaces a known version)
    known = {record.doc_id: record for record in index.manifest.documents(collection)}
    # The bar counts documents done (written, skipped or failed), not read: reading runs a batch or two ahead.
    bar = tqdm(total=total, desc=f"ingest {collection}", unit="doc", disable=not progress)

    def written(documents_done: int, chunks: int) -> None:
        summary.chunks_written += chunks
        elapsed = max(time.perf_counter() - started, 1e-9)
        bar.set_postfix(chunks_per_s=f"{summary.chunks_written / elapsed:.0f}", refresh=False)
        bar.update(documents_done)

    with EmbedWritePipeline(index, collection, on_written=written) as pipeline:

        def flush() -> None:
            writes = []
            for (document, digest, replaces), outcome in zip(pending, chunk_all(chunker, pending), strict=True):
                if isinstance(outcome, str):
                    summary.failed[document.doc_id] = outcome
                    bar.update(1)
                    continue
                (summary.updated if replaces else summary.added).append(document.doc_id)
                writes.append(DocumentWrite(document.doc_id, digest, outcome))
            pending.clear()
            pipeline.submit(writes)

        for item in documents:
            seen.add(item.doc_id)
            if isinstance(item, LoadFailure):
                summary.failed[item.doc_id] = item.reason
                bar.update(1)
                continue
            previous = known.get(item.doc_id)
            digest = index_hash(item, chunker)
            if previous is not None and previous.content_hash == digest and previous.status == "indexed":
                summary.skipped.append(item.doc_id)
                bar.update(1)
                continue
            pending.append((item, digest, previous is not None))
            if len(pending) >= batch_documents:
                flush()
        if pending:
            flush()
    bar.close()
    if prune:
        for doc_id in sorted(set(known) - seen):
            index.delete(collection, doc_id)
            summary.deleted.append(doc_id)
    index.commit(collection)
    summary.seconds = time.perf_counter() - started
    return summary


def chunk_all(chunker: Chunker, pending: Sequence[tuple[Document, str, bool]]) -> list[list[Chunk] | str]:
    """Chunk a batch of documents: each becomes its chunks or the reason it failed, in the batch's order.

    A chunker that waits on a service (RAPTOR's summaries) declares ``parallel_documents`` above 1: that many
    documents are chunked at once, so their requests reach vLLM together and its continuous batching fills up,
    instead of one document's tree at a time. Other chunkers are CPU-bound and run here, one document after
    another."""

    def one(document: Document) -> list[Chunk] | str:
        try:
            chunks = chunker.chunk(document)
        except TextGenerationError as exc:
            return f"summaries could not be generated: {exc}"
        return chunks if chunks else "the chunker produced no chunks"

    documents = [document for document, _, _ in pending]
    workers = min(chunker.parallel_documents, len(documents))
    if workers <= 1:
        return [one(document) for document in documents]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chunk") as pool:
        return list(pool.map(one, documents))
