"""The index of a data directory: Chroma vectors + BM25 + the SQLite manifest, written in a crash-safe order.

Order of a write: embed (no side effects) → manifest records the new chunks as ``pending`` and the replaced ones
as stale → Chroma drops stale vectors and upserts new ones → manifest marks the document ``indexed``.
``repair`` finishes or undoes whatever a crash interrupted.

Writes are made under this process's writer lease (``retrieval.store.leases``): pending rows name it, a lost lease
stops the write, and ``repair`` rolls back only the pending documents whose writer is gone (or its own), so it
never undoes a write another live process (an API replica, a worker) is doing.

BM25 and the indexed chunks are a per-process cache of the manifest (``retrieval.collection_cache``), refreshed
incrementally when the collection's version moves, so every process that shares the store (API replicas on other
hosts, workers) serves what was committed, at most ``version_check_ms`` late. Nothing on disk is shared.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval import filters
from retrieval.bm25 import BM25Config
from retrieval.collection_cache import CollectionCache
from retrieval.manifest import Manifest
from retrieval.protocols import Embedder
from retrieval.store.leases import DEFAULT_LEASE_S, WriterLease, process_lease
from retrieval.types import Chunk, Hit
from retrieval.vector_store import ChromaVectorStore

log = logging.getLogger(__name__)


def filterable(chunk: Chunk) -> dict[str, Any]:
    """The metadata a filter sees: the chunk's own plus the fields the vector store adds."""
    return {**chunk.metadata, "doc_id": chunk.doc_id, "level": chunk.level}


class UnknownCollectionError(LookupError):
    """A collection the index does not hold. The message lists the known ones for a local user; a server with
    tenants must not pass it on (it names every tenant's collections) and uses ``collection`` instead."""

    def __init__(self, collection: str, known: list[str]) -> None:
        self.collection = collection
        listed = ", ".join(known) or "none yet"
        super().__init__(
            f"collection {collection!r} does not exist (known: {listed}); "
            f"create it with `ragline ingest PATH --collection {collection}`"
        )


@dataclass(frozen=True)
class DocumentWrite:
    doc_id: str
    content_hash: str
    chunks: Sequence[Chunk]


@dataclass(frozen=True)
class IndexCounts:
    documents: int
    chunks: int
    vectors: int
    bm25_rows: int

    @property
    def consistent(self) -> bool:
        return self.chunks == self.vectors == self.bm25_rows


class Index:
    def __init__(
        self,
        data_dir: Path,
        embedder: Embedder,
        chroma_url: str | None = None,
        bm25_config: BM25Config | None = None,
        database_url: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        version_check_ms: int = 0,
    ) -> None:
        """``version_check_ms``: how often a search reads the collection's version (0: every search); the bound on
        how late BM25 and the chunk cache may be after a write another process committed."""
        self.data_dir = data_dir
        self.lease_s = lease_s
        self._pinned_writer: WriterLease | None = None
        self.bm25_config = bm25_config or BM25Config()
        self.embedder = embedder
        self.manifest = Manifest(data_dir / "ragline.sqlite", database_url=database_url)
        self.vectors = ChromaVectorStore(path=None if chroma_url else data_dir / "chroma", url=chroma_url)
        self.cache = CollectionCache(self.manifest, self.bm25_config, check_interval_s=version_check_ms / 1000)
        self._fields_cache: dict[str, tuple[dict[str, Chunk], set[str]]] = {}

    # ---- write path -------------------------------------------------------------------------------------
    @property
    def writer(self) -> WriterLease:
        """The lease writes are made under: the one pinned by ``writing_as``, else this process's lease on the
        manifest's database (started on the first write, renewed by a heartbeat; a fresh one after a loss)."""
        if self._pinned_writer is not None:
            return self._pinned_writer
        return process_lease(self.manifest.database, self.lease_s)

    @contextmanager
    def writing_as(self, lease: WriterLease) -> Iterator[None]:
        """Write only under ``lease`` inside the block: once it is lost, writes fail instead of moving to a fresh
        lease (a job's writes must all belong to the writer that holds the job)."""
        self._pinned_writer = lease
        try:
            yield
        finally:
            self._pinned_writer = None

    def write(self, collection: str, documents: Sequence[DocumentWrite], vectors: np.ndarray | None = None) -> None:
        """Index a batch of documents (each replaces its previous version). Call ``commit`` after batches.

        ``vectors`` (one row per chunk, in order) skips embedding: for benchmarks that synthesise a corpus."""
        chunks = [chunk for doc in documents for chunk in doc.chunks]
        if vectors is None:
            vectors = self.embedder.embed([c.text for c in chunks])
        elif len(vectors) != len(chunks):
            raise ValueError(f"{len(vectors)} vectors for {len(chunks)} chunks")
        writer = self.writer
        for doc in documents:
            self.manifest.begin_replace(collection, doc.doc_id, doc.content_hash, list(doc.chunks), writer)
        self._drop_stale_vectors(collection)
        if chunks:
            writer.check_not_lost()  # the heartbeat may have found it expired since: these rows may be rolled back
            self.vectors.upsert(collection, chunks, vectors)
        for doc in documents:
            self.manifest.mark_indexed(collection, doc.doc_id, writer=writer)

    def delete(self, collection: str, doc_id: str) -> None:
        self.manifest.begin_delete(collection, doc_id)
        self._drop_stale_vectors(collection)

    def commit(self, collection: str) -> None:
        """Bring this process's BM25 and chunk cache in line with the manifest now (only what changed is redone);
        other processes follow on their next version check."""
        self.cache.state(collection, force=True)

    def repair(self, collection: str, *, pending_before: float | None = None, include_own: bool = True) -> list[str]:
        """Undo interrupted writes: pending documents whose writer is gone are removed (the caller re-ingests
        them), vectors that no manifest row owns are deleted, and BM25 is rebuilt. Returns the rolled-back ids.

        A writer is gone when its lease expired or was removed; with ``include_own`` this process's own pending
        rows count too (a writer about to write the collection again: its earlier write failed). Rows written
        before leases existed have no writer: ``pending_before`` (a time) keeps those pending since then.
        A write another live process is doing right now is never undone.
        """
        own = self.writer.id if include_own else None
        rolled_back = self.manifest.abandoned_documents(collection, own=own, unowned_before=pending_before)
        for doc_id in rolled_back:
            self.manifest.begin_delete(collection, doc_id)
        self._drop_stale_vectors(collection)
        known = set(self.manifest.chunk_ids(collection, indexed_only=False))
        orphans = sorted(self.vectors.ids(collection) - known)
        if orphans:
            log.warning("deleting %d vectors no document owns in %s", len(orphans), collection)
            self.vectors.delete(collection, orphans)
        self.commit(collection)
        return rolled_back

    def _drop_stale_vectors(self, collection: str) -> None:
        stale = self.manifest.stale_vector_ids(collection)
        if stale:
            self.vectors.delete(collection, stale)
            self.manifest.clear_stale(collection, stale)

    # ---- read path --------------------------------------------------------------------------------------
    def _chunks_by_id(self, collection: str) -> dict[str, Chunk]:
        return self.cache.state(collection).chunks

    def metadata_fields(self, collection: str) -> set[str]:
        """Every metadata key some chunk of the collection has (plus the fields the store adds); computed once
        per version of the collection, not per query."""
        chunks = self._chunks_by_id(collection)
        cached = self._fields_cache.get(collection)
        if cached is None or cached[0] is not chunks:
            keys = {"doc_id", "level"}
            for chunk in chunks.values():
                keys.update(chunk.metadata)
            cached = self._fields_cache[collection] = (chunks, keys)
        return cached[1]

    def check_filter(self, collection: str, where: Mapping[str, Any] | None) -> None:
        """Reject filters on fields no chunk has: a typo must be an error, not an empty result."""
        unknown = filters.fields(where) - self.metadata_fields(collection)
        if unknown:
            known = ", ".join(sorted(self.metadata_fields(collection)))
            raise ValueError(f"unknown filter field(s) {', '.join(sorted(unknown))}; fields in {collection!r}: {known}")

    def collections(self) -> list[str]:
        return self.manifest.collections()

    def require_collection(self, collection: str) -> None:
        if collection not in self.collections():
            raise UnknownCollectionError(collection, self.collections())

    def search_bm25(self, collection: str, query: str, k: int, where: Mapping[str, Any] | None = None) -> list[Hit]:
        state = self.cache.state(collection)
        index, chunks = state.bm25, state.chunks
        mask = None
        if where:
            # rows of deleted chunks (BM25 tombstones) are not in ``chunks``: never allowed
            allowed = [i in chunks and filters.matches(filterable(chunks[i]), where) for i in index.ids]
            mask = np.array(allowed, dtype=np.float32)
            if not mask.any():
                return []
        return [Hit(chunks[i], score, "bm25") for i, score in index.search(query, k, mask) if i in chunks]

    def search_dense(
        self,
        collection: str,
        query: str,
        k: int,
        where: Mapping[str, Any] | None = None,
        vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """``vector``: the query's embedding when the caller already has it (it times embedding on its own)."""
        chunks = self._chunks_by_id(collection)
        allowed = None
        if where and filters.needs_python_check(where):
            # Chroma cannot compare dates (stored as ISO strings): restrict its search to the chunks that pass.
            allowed = [chunk_id for chunk_id, chunk in chunks.items() if filters.matches(filterable(chunk), where)]
            if not allowed:
                return []
        if vector is None:
            vector = self.embedder.embed([query])[0]
        # Chroma also holds vectors of documents still being written (pending) or just replaced (stale): ask for
        # as many more as there are, and keep only indexed chunks, so an unfinished write is never an answer.
        unindexed = max(0, self.vectors.count(collection) - len(chunks)) if allowed is None else 0
        hits = self.vectors.search(collection, vector, k + unindexed, filters.to_chroma(where), ids=allowed)
        return [Hit(chunks[h.chunk.id], h.score, "dense", h.vector) for h in hits if h.chunk.id in chunks][:k]

    def counts(self, collection: str) -> IndexCounts:
        return IndexCounts(
            documents=len(self.manifest.documents(collection)),
            chunks=len(self.manifest.chunk_ids(collection, indexed_only=False)),
            vectors=self.vectors.count(collection),
            bm25_rows=self.cache.state(collection, force=True).bm25.n_docs,
        )
