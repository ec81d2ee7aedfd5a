"""The documents manifest: which documents a collection holds, their content hashes, and their chunks.

The relational store (``retrieval.store``: SQLite by default, PostgreSQL when shared) is the source of truth of
the write path. A document is first recorded as ``pending`` together with its new chunks and the ids of the chunks
it replaces; only after Chroma holds the new vectors is it marked ``indexed``. A crash in between leaves a
``pending`` row that the next run repairs, so nothing is lost and nothing is counted twice.

A pending row names its writer's lease (``retrieval.store.leases``): a repair rolls back only the pending rows
whose writer is gone (lease expired or removed), or its own, never a write another live process is doing. A write
made under a lease passes the lease as ``writer`` and is refused once that lease is lost (a fence: the process
that lost it may already be being rolled back by another).

Every transaction that changes what a collection serves also bumps its ``collection_version``, so a process that
caches something derived from the collection (BM25) learns with one read whether its cache is stale.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, Connection, and_, delete, exists, or_, select, update

from retrieval.store import Database, open_store
from retrieval.store.leases import WriterLease, live
from retrieval.store.tables import chunks as chunks_table
from retrieval.store.tables import collection_versions, documents, stale_vectors, writers
from retrieval.store.upsert import insert
from retrieval.types import Chunk

_DOCUMENT_COLUMNS = (
    documents.c.doc_id,
    documents.c.content_hash,
    documents.c.status,
    documents.c.chunk_count,
    documents.c.updated_at,
)

_IDS_PER_STATEMENT = 500


def _retire_chunks(db: Connection, collection: str, doc_id: str) -> None:
    """Forget a document's chunks, remembering their vectors as stale until the vector store drops them."""
    owned = select(chunks_table.c.collection, chunks_table.c.id).where(
        chunks_table.c.collection == collection, chunks_table.c.doc_id == doc_id
    )
    db.execute(insert(db, stale_vectors).from_select(["collection", "id"], owned).on_conflict_do_nothing())
    db.execute(delete(chunks_table).where(chunks_table.c.collection == collection, chunks_table.c.doc_id == doc_id))


def _forget_stale(db: Connection, collection: str, ids: list[str]) -> None:
    """Drop ids from the stale list, in slices that stay under SQLite's limit on bound parameters."""
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        batch = ids[start : start + _IDS_PER_STATEMENT]
        db.execute(delete(stale_vectors).where(stale_vectors.c.collection == collection, stale_vectors.c.id.in_(batch)))


def _bump_version(db: Connection, collection: str) -> None:
    """Count one more change to what ``collection`` serves, in the caller's transaction."""
    statement = insert(db, collection_versions).values(collection=collection, version=1)
    db.execute(
        statement.on_conflict_do_update(
            index_elements=[collection_versions.c.collection],
            set_={"version": collection_versions.c.version + 1},
        )
    )


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    content_hash: str
    status: str
    chunk_count: int
    updated_at: float


DocStamp = tuple[str, float]
"""What identifies one written version of an indexed document: its content hash and the time it was marked indexed.
A rewrite (even of the same content) gets a new time, so a cache keyed by stamps sees every rewrite."""


@dataclass(frozen=True)
class CollectionChanges:
    """What a cache built from the documents ``known`` must change to match ``version`` of the collection."""

    version: int
    stamps: dict[str, DocStamp]
    """Every indexed document of the collection at ``version``."""
    removed: set[str]
    """Known documents that are gone, no longer indexed, or rewritten (their new chunks are in ``added``)."""
    added: list[Chunk]
    """The chunks of documents indexed at ``version`` that ``known`` lacks or has with another stamp, in document
    then position order."""


class Manifest:
    """Documents and chunks per collection, in ``<data_dir>/ragline.sqlite`` or the shared ``database_url``."""

    def __init__(self, path: Path, *, database_url: str | URL | None = None) -> None:
        self.path = path
        self._db = open_store(path, database_url, "index")

    @property
    def database(self) -> Database:
        """The store the manifest lives in (writer leases live beside it)."""
        return self._db

    def close(self) -> None:
        self._db.close()

    def document(self, collection: str, doc_id: str) -> DocumentRecord | None:
        query = select(*_DOCUMENT_COLUMNS).where(documents.c.collection == collection, documents.c.doc_id == doc_id)
        with self._db.read() as db:
            row = db.execute(query).first()
        return DocumentRecord(*row) if row else None

    def documents(self, collection: str) -> list[DocumentRecord]:
        query = select(*_DOCUMENT_COLUMNS).where(documents.c.collection == collection).order_by(documents.c.doc_id)
        with self._db.read() as db:
            return [DocumentRecord(*row) for row in db.execute(query)]

    def collections(self) -> list[str]:
        query = select(documents.c.collection).distinct().order_by(documents.c.collection)
        with self._db.read() as db:
            return list(db.scalars(query))

    def collection_version(self, collection: str) -> int:
        """How many committed changes to what ``collection`` serves there have been (0: none yet).

        It only ever grows, so a cache built at version ``v`` is current exactly while this still returns ``v``."""
        query = select(collection_versions.c.version).where(collection_versions.c.collection == collection)
        with self._db.read() as db:
            return db.scalar(query) or 0

    def begin_replace(
        self,
        collection: str,
        doc_id: str,
        content_hash: str,
        chunks: list[Chunk],
        writer: WriterLease | None = None,
    ) -> None:
        """Record the new chunks as pending (under ``writer``'s lease) and remember the vectors they replace."""
        with self._db.write() as db:
            if writer is not None:
                writer.check(db)
            _retire_chunks(db, collection, doc_id)
            if chunks:
                db.execute(
                    chunks_table.insert(),
                    [
                        {
                            "collection": collection,
                            "id": c.id,
                            "doc_id": doc_id,
                            "position": i,
                            "text": c.text,
                            "metadata": json.dumps(dict(c.metadata)),
                            "level": c.level,
                            "parent_id": c.parent_id,
                        }
                        for i, c in enumerate(chunks)
                    ],
                )
                _forget_stale(db, collection, [c.id for c in chunks])
            row = {
                "collection": collection,
                "doc_id": doc_id,
                "content_hash": content_hash,
                "status": "pending",
                "chunk_count": len(chunks),
                "updated_at": time.time(),
                "writer": writer.id if writer is not None else None,
            }
            statement = insert(db, documents).values(row)
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=[documents.c.collection, documents.c.doc_id],
                    set_={
                        "content_hash": statement.excluded.content_hash,
                        "status": "pending",
                        "chunk_count": statement.excluded.chunk_count,
                        "updated_at": statement.excluded.updated_at,
                        "writer": statement.excluded.writer,
                    },
                )
            )
            _bump_version(db, collection)

    def begin_delete(self, collection: str, doc_id: str) -> None:
        """Forget a document; its vectors become stale until the vector store drops them."""
        with self._db.write() as db:
            _retire_chunks(db, collection, doc_id)
            db.execute(delete(documents).where(documents.c.collection == collection, documents.c.doc_id == doc_id))
            _bump_version(db, collection)

    def mark_indexed(self, collection: str, doc_id: str, writer: WriterLease | None = None) -> None:
        """The document's vectors are stored: it is served from now on (only while ``writer``'s lease is live,
        and only the row that writer wrote)."""
        with self._db.write() as db:
            query = update(documents).where(documents.c.collection == collection, documents.c.doc_id == doc_id)
            if writer is not None:
                writer.check(db)
                query = query.where(documents.c.writer == writer.id)
            db.execute(query.values(status="indexed", updated_at=time.time(), writer=None))
            _bump_version(db, collection)

    def stale_vector_ids(self, collection: str) -> list[str]:
        with self._db.read() as db:
            return list(db.scalars(select(stale_vectors.c.id).where(stale_vectors.c.collection == collection)))

    def clear_stale(self, collection: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        with self._db.write() as db:
            _forget_stale(db, collection, ids)

    def pending_documents(self, collection: str, *, updated_before: float | None = None) -> list[str]:
        """Documents whose write has not finished; ``updated_before`` keeps only those pending since before then."""
        query = select(documents.c.doc_id).where(documents.c.collection == collection, documents.c.status == "pending")
        if updated_before is not None:
            query = query.where(documents.c.updated_at < updated_before)
        with self._db.read() as db:
            return list(db.scalars(query))

    def abandoned_documents(
        self, collection: str, *, own: str | None = None, unowned_before: float | None = None
    ) -> list[str]:
        """Pending documents whose writer is gone: its lease expired or was removed, or it is ``own`` (the caller's
        lease: its own earlier write that failed). Rows without a writer (written before leases) count as gone,
        those updated since ``unowned_before`` excepted."""
        with self._db.read() as db:
            alive = exists().where(writers.c.id == documents.c.writer, live(db))
            unowned = documents.c.writer.is_(None)
            if unowned_before is not None:
                unowned = and_(unowned, documents.c.updated_at < unowned_before)
            gone = or_(unowned, and_(documents.c.writer.is_not(None), ~alive))
            if own is not None:
                gone = or_(gone, documents.c.writer == own)
            query = select(documents.c.doc_id).where(
                documents.c.collection == collection, documents.c.status == "pending", gone
            )
            return list(db.scalars(query.order_by(documents.c.doc_id)))

    def chunks(self, collection: str, doc_id: str | None = None, *, indexed_only: bool = True) -> list[Chunk]:
        """Chunks in a stable order (document, then position)."""
        c = chunks_table.c
        query = (
            select(c.id, c.doc_id, c.text, c.metadata, c.level, c.parent_id)
            .join(documents, and_(documents.c.collection == c.collection, documents.c.doc_id == c.doc_id))
            .where(c.collection == collection)
        )
        if indexed_only:
            query = query.where(documents.c.status == "indexed")
        if doc_id is not None:
            query = query.where(c.doc_id == doc_id)
        query = query.order_by(c.doc_id, c.position)
        with self._db.read() as db:
            rows = db.execute(query).all()
        return [
            Chunk(id=r[0], doc_id=r[1], text=r[2], metadata=json.loads(r[3]), level=r[4], parent_id=r[5]) for r in rows
        ]

    def chunk_ids(self, collection: str, *, indexed_only: bool = True) -> list[str]:
        return [c.id for c in self.chunks(collection, indexed_only=indexed_only)]

    def changes(self, collection: str, known: Mapping[str, DocStamp]) -> CollectionChanges:
        """The collection's version and what changed since the state ``known`` (doc id → stamp), read in one
        snapshot: the version, the document list and the chunks agree even while writers commit (REPEATABLE READ
        on PostgreSQL, whose default would give each statement its own snapshot; SQLite's read transaction
        already is one). Costs one read of the indexed documents' ids and stamps, plus the text of changed ones."""
        d = documents.c
        options = {"isolation_level": "REPEATABLE READ"} if self._db.dialect == "postgresql" else {}
        with self._db.connect(sqlite_begin="DEFERRED", **options) as db, db.begin():
            v = collection_versions.c
            version = db.scalar(select(v.version).where(v.collection == collection))
            rows = db.execute(
                select(d.doc_id, d.content_hash, d.updated_at).where(d.collection == collection, d.status == "indexed")
            )
            stamps = {doc_id: (content_hash, updated_at) for doc_id, content_hash, updated_at in rows}
            removed = {doc_id for doc_id, stamp in known.items() if stamps.get(doc_id) != stamp}
            fresh = sorted(doc_id for doc_id, stamp in stamps.items() if known.get(doc_id) != stamp)
            added = self._indexed_chunks(db, collection, None if len(fresh) * 2 > len(stamps) else fresh)
        wanted = set(fresh)
        return CollectionChanges(version or 0, stamps, removed, [c for c in added if c.doc_id in wanted])

    def _indexed_chunks(self, db: Connection, collection: str, doc_ids: list[str] | None) -> list[Chunk]:
        """Indexed chunks of ``doc_ids`` (all of the collection's when None: cheaper than a long id list)."""
        c = chunks_table.c
        query = (
            select(c.id, c.doc_id, c.text, c.metadata, c.level, c.parent_id)
            .join(documents, and_(documents.c.collection == c.collection, documents.c.doc_id == c.doc_id))
            .where(c.collection == collection, documents.c.status == "indexed")
        )
        batches = (
            [query]
            if doc_ids is None
            else [
                query.where(c.doc_id.in_(doc_ids[i : i + _IDS_PER_STATEMENT]))
                for i in range(0, len(doc_ids), _IDS_PER_STATEMENT)
            ]
        )
        rows = [row for batch in batches for row in db.execute(batch.order_by(c.doc_id, c.position))]
        return [
            Chunk(id=r[0], doc_id=r[1], text=r[2], metadata=json.loads(r[3]), level=r[4], parent_id=r[5]) for r in rows
        ]
