"""The tables of ragline's shared state, as SQLAlchemy Core metadata: one definition for SQLite and PostgreSQL.

Two schemas: ``index`` (documents manifest, chunks, stale vectors, collection versions, ingestion jobs; in
``<data_dir>/ragline.sqlite`` by default) and ``memory`` (sessions, turns, summaries, memory items; in
``<data_dir>/memory.sqlite3``). With a shared database both live in it side by side. Timestamps are Unix seconds
as floats (``Float`` is a double on PostgreSQL), as the SQLite files have always stored them.

These describe the schema at the newest migration; the migrations under ``migrations/`` are what creates it.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Float, Index, Integer, LargeBinary, MetaData, Table, Text

index_metadata = MetaData()
memory_metadata = MetaData()

documents = Table(
    "documents",
    index_metadata,
    Column("collection", Text, primary_key=True),
    Column("doc_id", Text, primary_key=True),
    Column("content_hash", Text, nullable=False),
    Column("status", Text, CheckConstraint("status IN ('pending', 'indexed')"), nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("writer", Text),
)
"""``writer``: the lease (``writers.id``) of the process writing a ``pending`` document, so a repair rolls back only
writes whose writer is gone (NULL on rows written before writers had leases: treated as gone)."""

chunks = Table(
    "chunks",
    index_metadata,
    Column("collection", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("doc_id", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("level", Integer, nullable=False, server_default="0"),
    Column("parent_id", Text),
    Index("chunks_by_doc", "collection", "doc_id"),
)

stale_vectors = Table(
    "stale_vectors",
    index_metadata,
    Column("collection", Text, primary_key=True),
    Column("id", Text, primary_key=True),
)

collection_versions = Table(
    "collection_versions",
    index_metadata,
    Column("collection", Text, primary_key=True),
    Column("version", Integer, nullable=False),
)
"""One counter per collection, bumped in the transaction of every write that changes what the collection serves,
so a replica holding a cache derived from it (BM25) can tell with one read that the cache is stale."""

ingest_jobs = Table(
    "ingest_jobs",
    index_metadata,
    Column("id", Text, primary_key=True),
    Column("tenant", Text),
    Column("collection", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("files_total", Integer, nullable=False),
    Column("files_done", Integer, nullable=False, server_default="0"),
    Column("chunks", Integer, nullable=False, server_default="0"),
    Column("summary", Text),
    Column("failures", Text, nullable=False, server_default="{}"),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("runner", Text, nullable=False, server_default="api"),
    Column("lock_key", Text),
    Column("chunker", Text),
    Column("metadata", Text),
    Column("worker", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Index("jobs_by_status", "status", "created_at"),
)
"""``runner``: ``api`` (run in the API process that accepted it) or ``worker`` (any ``ragline worker``).
``lock_key``: the stored collection: jobs of one key run one at a time, in order. ``worker``: the lease of the
process running (or, for ``api``, holding) the job; ``attempts``: how many times a worker started it."""

job_files = Table(
    "job_files",
    index_metadata,
    Column("job_id", Text, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
)
"""The uploaded bytes of a job until it ends: in the database so that any worker on any host can run the job."""

writers = Table(
    "writers",
    index_metadata,
    Column("id", Text, primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)
"""Leases of the processes that write the index (API, CLI ingest, workers), renewed by a heartbeat; times are the
database's clock, so hosts whose clocks differ agree on which lease has expired."""

sessions = Table(
    "sessions",
    memory_metadata,
    Column("id", Text, primary_key=True),
    Column("tenant", Text, nullable=False),
    Column("user", Text, nullable=False),
    Column("collection", Text, nullable=False),
    Column("summary", Text, nullable=False, server_default=""),
    Column("summary_error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("lock_owner", Text),
    Column("lock_expires", Float),
)

turns = Table(
    "turns",
    memory_metadata,
    Column("session_id", Text, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("question", Text, nullable=False),
    Column("search_query", Text),
    Column("answer", Text, nullable=False),
    Column("tier", Text, CheckConstraint("tier IN ('active', 'evicted', 'summarized')"), nullable=False),
    Column("prompt_tokens", Integer),
    Column("memory_tokens", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
)

summaries = Table(
    "summaries",
    memory_metadata,
    Column("session_id", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

memory_items = Table(
    "memory_items",
    memory_metadata,
    Column("id", Text, primary_key=True),
    Column("session_id", Text, nullable=False),
    Column("tenant", Text, nullable=False),
    Column("user", Text, nullable=False),
    Column("kind", Text, CheckConstraint("kind IN ('fact', 'summary')"), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("items_by_session", "session_id"),
    Index("items_by_user", "tenant", "user"),
)
