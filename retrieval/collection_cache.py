"""What one process (an API replica, a worker) keeps of each collection it serves: the indexed chunks and their
BM25, kept in line with the shared store by ``collection_version``.

The store (``retrieval.manifest``) is the source of truth; this cache is derived from it and rebuilt from it on a
cold start, so replicas on different hosts, each with its own data_dir, need nothing but the database. A search
asks ``CollectionCache.state``; that reads the collection's version (one primary-key row) unless it was read less
than ``check_interval_s`` ago, and when it moved applies only what changed (``Manifest.changes``): removed and
rewritten documents become BM25 tombstones, new ones one new BM25 segment (``retrieval.bm25_segments``).

Staleness bound: a state is served only while its version was read at most ``check_interval_s`` ago, and that
read sees every write committed before it. So a search never misses a write committed more than
``check_interval_s`` before it started (0: it sees every write committed before it started).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from retrieval.bm25 import BM25Config
from retrieval.bm25_segments import Row, SegmentedBM25
from retrieval.manifest import DocStamp, Manifest
from retrieval.types import Chunk


@dataclass(frozen=True)
class CollectionState:
    """One version of a collection as served: its indexed chunks and their BM25. Immutable: a search that holds it
    keeps a consistent view while a refresh builds the next one."""

    version: int
    stamps: dict[str, DocStamp]
    chunks: dict[str, Chunk]
    doc_chunks: dict[str, list[str]]
    bm25: SegmentedBM25
    checked_at: float = field(compare=False)
    """``time.monotonic()`` just before the version this state matches was read."""


@dataclass
class RefreshStats:
    """How often this process checked versions and refreshed (for benchmarks and logs)."""

    checks: int = 0
    refreshes: int = 0
    chunks_added: int = 0
    documents_removed: int = 0


class CollectionCache:
    """Per-process cache of collection states, refreshed from ``manifest`` when ``collection_version`` moves."""

    def __init__(
        self,
        manifest: Manifest,
        bm25_config: BM25Config,
        *,
        check_interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if check_interval_s < 0:
            raise ValueError(f"check_interval_s must be >= 0, got {check_interval_s}")
        self.manifest = manifest
        self.bm25_config = bm25_config
        self.check_interval_s = check_interval_s
        self.stats = RefreshStats()
        self._clock = clock
        self._states: dict[str, CollectionState] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def state(self, collection: str, *, force: bool = False) -> CollectionState:
        """The collection as of a version read at most ``check_interval_s`` ago (``force``: read it now)."""
        current = self._states.get(collection)
        if current is not None and not force and self._clock() - current.checked_at < self.check_interval_s:
            return current
        with self._lock(collection):
            current = self._states.get(collection)
            started = self._clock()
            if current is not None and not force and started - current.checked_at < self.check_interval_s:
                return current  # another thread refreshed while this one waited
            self.stats.checks += 1
            version = self.manifest.collection_version(collection)
            if current is not None and current.version == version:
                current = _with_checked_at(current, started)
            else:
                current = self._refresh(collection, current, started)
            self._states[collection] = current
            return current

    def forget(self, collection: str) -> None:
        """Drop a collection's state (the next search rebuilds it from the store)."""
        with self._lock(collection):
            self._states.pop(collection, None)

    def _refresh(self, collection: str, current: CollectionState | None, started: float) -> CollectionState:
        known = current.stamps if current is not None else {}
        changes = self.manifest.changes(collection, known)
        chunks = dict(current.chunks) if current is not None else {}
        doc_chunks = dict(current.doc_chunks) if current is not None else {}
        for doc_id in changes.removed:
            for chunk_id in doc_chunks.pop(doc_id, []):
                chunks.pop(chunk_id, None)
        for chunk in changes.added:
            chunks[chunk.id] = chunk
            doc_chunks.setdefault(chunk.doc_id, []).append(chunk.id)
        bm25 = current.bm25 if current is not None else SegmentedBM25.empty(self.bm25_config)
        rows = [Row(c.id, c.doc_id, c.text) for c in changes.added]
        bm25 = bm25.apply(removed=changes.removed, rows=rows)
        self.stats.refreshes += 1
        self.stats.chunks_added += len(rows)
        self.stats.documents_removed += len(changes.removed)
        return CollectionState(changes.version, changes.stamps, chunks, doc_chunks, bm25, started)

    def _lock(self, collection: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(collection, threading.Lock())


def _with_checked_at(state: CollectionState, checked_at: float) -> CollectionState:
    return CollectionState(state.version, state.stamps, state.chunks, state.doc_chunks, state.bm25, checked_at)
