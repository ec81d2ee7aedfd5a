"""The ingestion job: discover files, load, chunk, and write changed documents to the index in batches.

Incremental by content hash: unchanged documents are skipped, changed ones replaced, and with ``prune`` those
no longer present are deleted. The index's write order makes every batch crash-safe; the job starts with a
repair, so a rerun after a kill finishes what the killed run started.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from ingest.document import Document
from ingest.loaders import LoadError, discover, load_document
from ingest.text_generation import TextGenerationError
from retrieval.index import DocumentWrite, Index
from retrieval.types import Chunk

log = logging.getLogger(__name__)


class Chunker(Protocol):
    name: str

    def chunk(self, document: Document) -> list[Chunk]: ...


def index_hash(document: Document, chunker: Chunker) -> str:
    """What decides whether a document must be re-indexed: its content and how it is chunked. Switching a
    collection to another chunker (or chunk size) therefore re-chunks every document on the next ingest."""
    signature = getattr(chunker, "signature", chunker.name)
    return hashlib.sha256(f"{document.content_hash}\0{signature}".encode()).hexdigest()


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


def _load_files(
    root: Path, extra_metadata: Mapping[str, Any] | None, max_bytes: int
) -> Iterator[Document | LoadFailure]:
    base = root if root.is_dir() else root.parent
    for path in discover(root):
        doc_id = path.relative_to(base).as_posix()
        reason = _reject_reason(path, base, max_bytes)
        if reason:
            yield LoadFailure(doc_id, reason)
            continue
        try:
            yield load_document(path, base, extra_metadata)
        except LoadError as exc:
            yield LoadFailure(doc_id, exc.reason)
        except OSError as exc:
            yield LoadFailure(doc_id, f"cannot read: {exc.strerror or exc}")


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
    and with ``prune`` delete the known documents this run did not see."""
    started = time.perf_counter()
    summary = IngestSummary(collection=collection)
    rolled_back = index.repair(collection)
    if rolled_back:
        log.warning("rolled back %d interrupted document(s); they are ingested again now", len(rolled_back))
    seen: set[str] = set()
    batch: list[DocumentWrite] = []
    known = {record.doc_id: record for record in index.manifest.documents(collection)}
    bar = tqdm(documents, total=total, desc=f"ingest {collection}", unit="doc", disable=not progress)

    def flush() -> None:
        if batch:
            index.write(collection, batch)
            summary.chunks_written += sum(len(d.chunks) for d in batch)
            batch.clear()
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(chunks_per_s=f"{summary.chunks_written / elapsed:.0f}", refresh=False)

    for item in bar:
        seen.add(item.doc_id)
        if isinstance(item, LoadFailure):
            summary.failed[item.doc_id] = item.reason
            continue
        previous = known.get(item.doc_id)
        digest = index_hash(item, chunker)
        if previous is not None and previous.content_hash == digest and previous.status == "indexed":
            summary.skipped.append(item.doc_id)
            continue
        try:
            chunks = chunker.chunk(item)
        except TextGenerationError as exc:
            summary.failed[item.doc_id] = f"summaries could not be generated: {exc}"
            continue
        if not chunks:
            summary.failed[item.doc_id] = "the chunker produced no chunks"
            continue
        (summary.updated if previous is not None else summary.added).append(item.doc_id)
        batch.append(DocumentWrite(item.doc_id, digest, chunks))
        if len(batch) >= batch_documents:
            flush()
    flush()
    bar.close()
    if prune:
        for doc_id in sorted(set(known) - seen):
            index.delete(collection, doc_id)
            summary.deleted.append(doc_id)
    index.commit(collection)
    summary.seconds = time.perf_counter() - started
    return summary
