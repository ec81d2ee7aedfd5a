"""Schema migrations with Alembic, run by the stores themselves when they open a database.

Each schema (``index``, ``memory``) has its own chain of revisions under ``migrations/<schema>/`` and its own
version table, so the two can live in separate SQLite files or side by side in one PostgreSQL database. The
Alembic configuration is built in code: nothing but the package is needed at run time.

Opening is cheap when the schema is current (one read of the version table). Otherwise the upgrade runs in one
transaction that first takes a lock every other opener waits for — the write lock on SQLite, a transaction-scoped
advisory lock on PostgreSQL — so two processes opening a fresh database at once migrate it exactly once; the
second finds the version at head and does nothing. DDL is transactional on both engines, so a crash mid-upgrade
leaves the previous schema.

Files written before migrations existed (tables present, no version table) are adopted in place: the first
revision creates only the tables and indexes that are missing, so their rows stay and later revisions apply.
"""

from __future__ import annotations

import functools
import logging
import threading
import zlib
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from retrieval.store.engine import Database

log = logging.getLogger(__name__)

Schema = Literal["index", "memory"]
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLES: dict[Schema, str] = {"index": "alembic_version", "memory": "alembic_version_memory"}
LEGACY_TABLES: dict[Schema, tuple[str, ...]] = {
    "index": ("documents", "chunks", "stale_vectors", "ingest_jobs"),
    "memory": ("sessions", "turns", "summaries", "memory_items"),
}

_IN_PROCESS = threading.Lock()
"""Alembic keeps the running migration environment in module globals: one upgrade at a time per process, even of
different databases (the database locks below only order processes)."""


def alembic_config(schema: Schema) -> Config:
    """The Alembic configuration of one schema, without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_locations", str(MIGRATIONS / schema))
    config.set_main_option("path_separator", "os")
    config.attributes["version_table"] = VERSION_TABLES[schema]
    return config


@functools.cache
def head(schema: Schema) -> str:
    """The newest revision of ``schema`` (read from the package once per process)."""
    revision = ScriptDirectory.from_config(alembic_config(schema)).get_current_head()
    assert revision is not None, f"no migrations for schema {schema}"
    return revision


def current_revision(database: Database, schema: Schema) -> str | None:
    """The revision ``schema`` is at, None before the first migration (read directly: the check on every open)."""
    version_table = VERSION_TABLES[schema]
    with database.read() as connection:
        if not inspect(connection).has_table(version_table):
            return None
        rows = connection.execute(text(f"SELECT version_num FROM {version_table}")).all()
    return rows[0][0] if len(rows) == 1 else None


def _lock_key(schema: Schema) -> int:
    """A stable advisory-lock key per schema (a signed 64-bit int, as ``pg_advisory_xact_lock`` takes)."""
    return zlib.crc32(f"ragline-migrations-{schema}".encode())


def upgrade(database: Database, schema: Schema) -> None:
    """Bring ``schema`` in ``database`` to the newest revision, once, whoever else is opening it right now."""
    target = head(schema)
    if current_revision(database, schema) == target:
        return
    config = alembic_config(schema)
    with _IN_PROCESS, database.write() as connection:  # SQLite: BEGIN IMMEDIATE, the lock every other opener waits for
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(schema)})
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLES[schema]})
        if context.get_current_revision() == target:
            return  # another process upgraded it while this one waited for the lock
        if context.get_current_revision() is None:
            present = set(inspect(connection).get_table_names()) & set(LEGACY_TABLES[schema])
            if present:
                log.info("adopting the existing %s tables %s into migrations", schema, sorted(present))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.info("%s schema of %s upgraded to %s", schema, database.url.render_as_string(hide_password=True), target)
