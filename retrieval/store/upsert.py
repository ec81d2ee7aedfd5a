"""``INSERT … ON CONFLICT`` in the spelling of the connection's engine (SQLite and PostgreSQL share the syntax,
SQLAlchemy keeps it per dialect)."""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An insert of ``table`` with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` available."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
