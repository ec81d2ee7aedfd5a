"""ragline's relational store: SQLAlchemy Core over an embedded SQLite file or a shared PostgreSQL database.

``engine`` opens connections with the transaction shapes the stores rely on, ``tables`` describes the schema,
``migrate`` brings a database to it with Alembic. The stores themselves (``retrieval.manifest.Manifest``,
``memory.store.MemoryStore``, the API's ``JobStore``) are built on ``open_store``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import URL

from retrieval.store.engine import Database, StoreUnavailableError, resolve_url
from retrieval.store.migrate import Schema, upgrade

__all__ = ["Database", "StoreUnavailableError", "open_store"]


def open_store(sqlite_path: Path, database_url: str | URL | None, schema: Schema) -> Database:
    """The database of a store (``database_url``, else its SQLite file), migrated to the newest ``schema``."""
    database = Database(resolve_url(sqlite_path, database_url))
    try:
        upgrade(database, schema)
    except BaseException:
        database.close()
        raise
    return database
