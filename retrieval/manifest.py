"""The documents manifest: which documents a collection holds, their content hashes, and their chunks.

SQLite is the source of truth of the write path. A document is first recorded as ``pending`` together with its
new chunks and the ids of the chunks it replaces; only after Chroma holds the new vectors is it marked
``indexed``. A crash in between leaves a ``pending`` row that the next run repairs, so nothing is lost and
nothing is counted twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from retrieval.sqlite import open_database, transaction
from retrieval.types import Chunk

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'indexed')),
    chunk_count INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (collection, doc_id)
);
CREATE TABLE IF NOT EXISTS chunks (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    level INTEGER NOT NULL DEFAULT 0,
    parent_id TEXT,
    PRIMARY KEY (collection, id)
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (collection, doc_id);
CREATE TABLE IF NOT EXISTS stale_vectors (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (collection, id)
);
"""


def _retire_chunks(db: sqlite3.Connection, collection: str, doc_id: str) -> None:
    """Forget a document's chunks, remembering their vectors as stale until the vector store drops them."""
    db.execute(
        "INSERT OR IGNORE INTO stale_vectors (collection, id) "
        "SELECT collection, id FROM chunks WHERE collection = ? AND doc_id = ?",
        (collection, doc_id),
    )
    db.execute("DELETE FROM chunks WHERE collection = ? AND doc_id = ?", (collection, doc_id))


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    content_hash: str
    status: str
    chunk_count: int
    updated_at: float


class Manifest:
    """Documents and chunks per collection, in ``<data_dir>/ragline.sqlite``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_database(path, _SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with transaction(self._db) as db:
            yield db

    def document(self, collection: str, doc_id: str) -> DocumentRecord | None:
        row = self._db.execute(
            "SELECT doc_id, content_hash, status, chunk_count, updated_at FROM documents "
            "WHERE collection = ? AND doc_id = ?",
            (collection, doc_id),
        ).fetchone()
        return DocumentRecord(*row) if row else None

    def documents(self, collection: str) -> list[DocumentRecord]:
        rows = self._db.execute(
            "SELECT doc_id, content_hash, status, chunk_count, updated_at FROM documents "
            "WHERE collection = ? ORDER BY doc_id",
            (collection,),
        ).fetchall()
        return [DocumentRecord(*row) for row in rows]

    def collections(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT collection FROM documents ORDER BY 1")]

    def begin_replace(self, collection: str, doc_id: str, content_hash: str, chunks: list[Chunk]) -> None:
        """Record the new chunks as pending and remember the vectors they replace."""
        with self._transaction() as db:
            _retire_chunks(db, collection, doc_id)
            db.executemany(
                "INSERT INTO chunks (collection, id, doc_id, position, text, metadata, level, parent_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (collection, c.id, doc_id, i, c.text, json.dumps(dict(c.metadata)), c.level, c.parent_id)
                    for i, c in enumerate(chunks)
                ],
            )
            new_ids = [(collection, c.id) for c in chunks]
            db.executemany("DELETE FROM stale_vectors WHERE collection = ? AND id = ?", new_ids)
            db.execute(
                "INSERT INTO documents (collection, doc_id, content_hash, status, chunk_count, updated_at) "
                "VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT (collection, doc_id) DO UPDATE SET "
                "content_hash = excluded.content_hash, status = 'pending', chunk_count = excluded.chunk_count, "
                "updated_at = excluded.updated_at",
                (collection, doc_id, content_hash, len(chunks), time.time()),
            )

    def begin_delete(self, collection: str, doc_id: str) -> None:
        """Forget a document; its vectors become stale until the vector store drops them."""
        with self._transaction() as db:
            _retire_chunks(db, collection, doc_id)
            db.execute("DELETE FROM documents WHERE collection = ? AND doc_id = ?", (collection, doc_id))

    def mark_indexed(self, collection: str, doc_id: str) -> None:
        self._db.execute(
            "UPDATE documents SET status = 'indexed', updated_at = ? WHERE collection = ? AND doc_id = ?",
            (time.time(), collection, doc_id),
        )

    def stale_vector_ids(self, collection: str) -> list[str]:
        rows = self._db.execute("SELECT id FROM stale_vectors WHERE collection = ?", (collection,))
        return [row[0] for row in rows]

    def clear_stale(self, collection: str, ids: Iterable[str]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM stale_vectors WHERE collection = ? AND id = ?", [(collection, i) for i in ids])

    def pending_documents(self, collection: str, *, updated_before: float | None = None) -> list[str]:
        """Documents whose write has not finished; ``updated_before`` keeps only those pending since before then."""
        query = "SELECT doc_id FROM documents WHERE collection = ? AND status = 'pending'"
        params: tuple[object, ...] = (collection,)
        if updated_before is not None:
            query += " AND updated_at < ?"
            params += (updated_before,)
        return [row[0] for row in self._db.execute(query, params)]

    def chunks(self, collection: str, doc_id: str | None = None, *, indexed_only: bool = True) -> list[Chunk]:
        """Chunks in a stable order (document, then position)."""
        query = (
            "SELECT c.id, c.doc_id, c.text, c.metadata, c.level, c.parent_id FROM chunks c "
            "JOIN documents d ON d.collection = c.collection AND d.doc_id = c.doc_id WHERE c.collection = ?"
        )
        params: list[object] = [collection]
        if indexed_only:
            query += " AND d.status = 'indexed'"
        if doc_id is not None:
            query += " AND c.doc_id = ?"
            params.append(doc_id)
        query += " ORDER BY c.doc_id, c.position"
        return [
            Chunk(id=r[0], doc_id=r[1], text=r[2], metadata=json.loads(r[3]), level=r[4], parent_id=r[5])
            for r in self._db.execute(query, params)
        ]

    def chunk_ids(self, collection: str, *, indexed_only: bool = True) -> list[str]:
        return [c.id for c in self.chunks(collection, indexed_only=indexed_only)]
