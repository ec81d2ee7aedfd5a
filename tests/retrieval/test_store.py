"""The relational store underneath the manifest, jobs and memory: migrations (fresh, concurrent, and adopting files
an older ragline wrote) on a real SQLite file and a real PostgreSQL server, and the error an unreachable server
gives."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from app.api.jobs import JobStore
from app.vllm_server import free_port
from memory.store import MemoryStore
from retrieval.manifest import Manifest
from retrieval.store import StoreUnavailableError, open_store
from retrieval.store.leases import process_lease, release_process_leases
from retrieval.store.migrate import current_revision, head
from retrieval.store.tables import writers

REPO = Path(__file__).resolve().parents[2]

# The schemas exactly as ragline created them before migrations existed (retrieval/manifest.py, app/api/jobs.py
# and memory/store.py ran these on every open): files in the field look like this.
OLD_INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL, doc_id TEXT NOT NULL, content_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'indexed')), chunk_count INTEGER NOT NULL,
    updated_at REAL NOT NULL, PRIMARY KEY (collection, doc_id));
CREATE TABLE IF NOT EXISTS chunks (
    collection TEXT NOT NULL, id TEXT NOT NULL, doc_id TEXT NOT NULL, position INTEGER NOT NULL, text TEXT NOT NULL,
    metadata TEXT NOT NULL, level INTEGER NOT NULL DEFAULT 0, parent_id TEXT, PRIMARY KEY (collection, id));
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (collection, doc_id);
CREATE TABLE IF NOT EXISTS stale_vectors (collection TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (collection, id));
CREATE TABLE IF NOT EXISTS ingest_jobs (
    id TEXT PRIMARY KEY, tenant TEXT, collection TEXT NOT NULL, status TEXT NOT NULL, files_total INTEGER NOT NULL,
    files_done INTEGER NOT NULL DEFAULT 0, chunks INTEGER NOT NULL DEFAULT 0, summary TEXT,
    failures TEXT NOT NULL DEFAULT '{}', error TEXT, created_at REAL NOT NULL, started_at REAL, finished_at REAL);
INSERT INTO documents VALUES ('docs', 'a.md', 'h1', 'indexed', 1, 1.0), ('docs', 'b.md', 'h2', 'pending', 1, 2.0);
INSERT INTO chunks VALUES ('docs', 'a#0', 'a.md', 0, 'alpha', '{"region": "EU"}', 0, NULL),
                          ('docs', 'b#0', 'b.md', 0, 'beta', '{}', 0, NULL);
INSERT INTO stale_vectors VALUES ('docs', 'old#0');
INSERT INTO ingest_jobs (id, tenant, collection, status, files_total, created_at)
    VALUES ('j1', NULL, 'docs', 'succeeded', 1, 1.0);
"""
OLD_MEMORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT NOT NULL PRIMARY KEY, tenant TEXT NOT NULL, user TEXT NOT NULL, collection TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '', summary_error TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    lock_owner TEXT, lock_expires REAL);
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL, position INTEGER NOT NULL, question TEXT NOT NULL, search_query TEXT,
    answer TEXT NOT NULL, tier TEXT NOT NULL CHECK (tier IN ('active', 'evicted', 'summarized')),
    prompt_tokens INTEGER, memory_tokens INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
    PRIMARY KEY (session_id, position));
CREATE TABLE IF NOT EXISTS summaries (
    session_id TEXT NOT NULL, version INTEGER NOT NULL, text TEXT NOT NULL, reason TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (session_id, version));
CREATE TABLE IF NOT EXISTS memory_items (
    id TEXT NOT NULL PRIMARY KEY, session_id TEXT NOT NULL, tenant TEXT NOT NULL, user TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('fact', 'summary')), text TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS items_by_session ON memory_items (session_id);
CREATE INDEX IF NOT EXISTS items_by_user ON memory_items (tenant, user);
INSERT INTO sessions (id, tenant, user, collection, created_at, updated_at) VALUES ('s1', '', 'ana', 'docs', 1, 1);
INSERT INTO turns (session_id, position, question, answer, tier, created_at)
    VALUES ('s1', 0, 'q0', 'a0', 'summarized', 1), ('s1', 1, 'q1', 'a1', 'active', 2);
INSERT INTO summaries VALUES ('s1', 0, '- asked q0', 'fold', 1);
INSERT INTO memory_items VALUES ('i1', 's1', '', 'ana', 'fact', 'q0', 1);
"""


def _old_file(path: Path, schema: str) -> Path:
    with sqlite3.connect(path) as connection:
        connection.executescript(schema)
    connection.close()
    return path


def test_files_written_before_migrations_are_upgraded_in_place_with_every_row(tmp_path: Path) -> None:
    index_file = _old_file(tmp_path / "ragline.sqlite", OLD_INDEX_SCHEMA)
    memory_file = _old_file(tmp_path / "memory.sqlite3", OLD_MEMORY_SCHEMA)

    manifest = Manifest(index_file)
    assert [(c.id, c.metadata) for c in manifest.chunks("docs")] == [("a#0", {"region": "EU"})]
    assert manifest.pending_documents("docs") == ["b.md"] and manifest.stale_vector_ids("docs") == ["old#0"]
    assert manifest.collection_version("docs") == 0  # the new table is there, empty
    manifest.mark_indexed("docs", "b.md")
    assert manifest.collection_version("docs") == 1 and len(manifest.chunks("docs")) == 2
    job = JobStore(index_file).get("j1")
    assert job is not None and (job.status, job.failures) == ("succeeded", {})

    memory = MemoryStore(memory_file)
    assert [(t.position, t.tier) for t in memory.turns("s1")] == [(0, "summarized"), (1, "active")]
    assert [s["text"] for s in memory.summaries("s1")] == ["- asked q0"] and len(memory.items(session_id="s1")) == 1
    assert memory.add_turn("s1", question="q2", search_query=None, answer="a2", prompt_tokens=None, memory_tokens=0)

    for database, schema in ((manifest._db, "index"), (memory._db, "memory")):
        assert current_revision(database, schema) == head(schema)  # type: ignore[arg-type]
    # a second open of an upgraded file finds nothing to do and keeps everything
    assert len(Manifest(index_file).chunks("docs")) == 2 and len(MemoryStore(memory_file).turns("s1")) == 3


def test_migrations_create_every_table_once_on_both_engines(tmp_path: Path, database_url: str | None) -> None:
    first = open_store(tmp_path / "ragline.sqlite", database_url, "index")
    second = open_store(tmp_path / "ragline.sqlite", database_url, "index")  # already at head: a no-op
    with second.read() as connection:
        tables = set(inspect(connection).get_table_names())
    expected = {"documents", "chunks", "stale_vectors", "collection_versions", "ingest_jobs", "alembic_version"}
    assert expected <= tables
    assert current_revision(first, "index") == current_revision(second, "index") == head("index")


OPENER = """
import sys
from pathlib import Path
from memory.store import MemoryStore
from retrieval.manifest import Manifest
folder, url = Path(sys.argv[1]), sys.argv[2] or None
Manifest(folder / "ragline.sqlite", database_url=url).close()
MemoryStore(folder / "memory.sqlite3", database_url=url).close()
"""


def test_processes_opening_a_fresh_database_at_once_migrate_it_exactly_once(
    tmp_path: Path, database_url: str | None
) -> None:
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(tmp_path), database_url or ""],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(opener.wait(timeout=120), opener.stderr.read() if opener.stderr else "") for opener in openers]
    assert all(code == 0 for code, _ in results), results
    manifest = Manifest(tmp_path / "ragline.sqlite", database_url=database_url)
    memory = MemoryStore(tmp_path / "memory.sqlite3", database_url=database_url)
    assert current_revision(manifest._db, "index") == head("index")
    assert current_revision(memory._db, "memory") == head("memory")


def test_an_unreachable_server_says_where_and_what_to_check_without_the_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://ragline:s3cret-pw@127.0.0.1:{port}/ragline"
    with pytest.raises(StoreUnavailableError) as caught:
        Manifest(tmp_path / "ragline.sqlite", database_url=url)
    message = str(caught.value)
    assert f"127.0.0.1 port {port}" in message and "ragline:***@" in message and "RAGLINE_DATABASE_URL" in message
    assert "s3cret-pw" not in message


def test_a_plain_postgresql_url_uses_psycopg_3(tmp_path: Path, postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    manifest = Manifest(tmp_path / "unused.sqlite", database_url=plain)
    assert manifest._db.engine.dialect.driver == "psycopg" and manifest.collections() == []
    assert not (tmp_path / "unused.sqlite").exists()


def test_releasing_process_leases_ends_their_heartbeats_and_rows(tmp_path: Path) -> None:
    kept_db = open_store(tmp_path / "kept.sqlite", None, "index")
    gone_db = open_store(tmp_path / "gone.sqlite", None, "index")
    kept, gone = process_lease(kept_db), process_lease(gone_db)
    prefix = gone_db.url.render_as_string(hide_password=False)
    try:
        assert release_process_leases(prefix) == 1
        assert gone.lost and gone._thread is not None and not gone._thread.is_alive()
        with gone_db.write() as db:
            assert list(db.scalars(select(writers.c.id))) == []
        assert not kept.lost and process_lease(kept_db) is kept  # the other database's lease is untouched
        assert process_lease(gone_db) is not gone  # a later write gets a fresh lease
    finally:
        for database in (kept_db, gone_db):
            release_process_leases(database.url.render_as_string(hide_password=False))
        kept_db.close()
        gone_db.close()
