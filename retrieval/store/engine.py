"""Connections to ragline's relational store: an embedded SQLite file by default, or a shared PostgreSQL server.

Both engines get the same two transaction shapes, so a store never branches on the engine:

- ``Database.write()``: a transaction that holds the right to write from its first statement. On SQLite that is
  ``BEGIN IMMEDIATE`` (the file's one write lock, waited for up to the busy timeout instead of failing half-way);
  pysqlite would otherwise start transactions lazily on the first DML, so its own transaction handling is switched
  off (``isolation_level = None``) and the ``BEGIN`` is emitted from the engine's ``begin`` event, the recipe of
  SQLAlchemy's pysqlite docs. On PostgreSQL it is an ordinary transaction; a store that needs to serialise writers
  of one row takes a row lock (``SELECT … FOR UPDATE``) instead of a database-wide one.
- ``Database.read()``: a consistent read (``BEGIN DEFERRED`` on SQLite: readers never queue behind writers in WAL).

A server that cannot be reached raises ``StoreUnavailableError`` with the URL (password hidden) and what to check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another process's write lock before giving up."""
CONNECT_TIMEOUT_S = 10
"""How long a PostgreSQL connection attempt may take before the server counts as unreachable."""


class StoreUnavailableError(RuntimeError):
    """The database cannot be reached or opened; the message names it (without its password) and what to check."""


def sqlite_url(path: Path) -> URL:
    """The URL of a SQLite file, its folder created when missing (the data dir may not exist yet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return URL.create("sqlite+pysqlite", database=str(path))


def resolve_url(sqlite_path: Path, database_url: str | URL | None) -> URL:
    """``database_url`` when one is set (a shared database for every store), else the store's own SQLite file.

    ``postgresql://`` without a driver means psycopg 3, the driver ragline ships (SQLAlchemy would pick psycopg2)."""
    if database_url is None or (isinstance(database_url, str) and not database_url.strip()):
        return sqlite_url(sqlite_path)
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"database URL {url.render_as_string(hide_password=True)!r}: only postgresql+psycopg://… and sqlite "
            "are supported"
        )
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return url


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """WAL so readers run beside a writer; transactions left to the ``begin`` event (see the module docstring)."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {mode}")


def create_store_engine(url: URL) -> Engine:
    """An engine for ``url`` with ragline's transaction semantics installed."""
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})


def describe_unavailable(url: URL, exc: BaseException) -> str:
    """What failed, on which database, and what to check; never the password."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if url.get_backend_name() == "sqlite":
        return f"cannot open the SQLite database {url.database}: {reason}; check that its folder exists and is writable"
    where = f"host {url.host or 'localhost (unix socket)'} port {url.port or 5432}"
    return (
        f"cannot reach the database {url.render_as_string(hide_password=True)}: {reason}; check that PostgreSQL "
        f"runs and accepts connections on {where}, that database {url.database!r} exists and the user and password "
        "are right (RAGLINE_DATABASE_URL)"
    )


class Database:
    """One engine and the transactions the stores run in; ``close`` returns its pooled connections."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.engine = create_store_engine(url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: for the few statements whose spelling differs (upserts)."""
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def connect(self, **options: Any) -> Iterator[Connection]:
        """A pooled connection; a failure to connect, or a connection lost mid-use, is ``StoreUnavailableError``."""
        try:
            connection = self.engine.connect()
        except DBAPIError as exc:
            raise StoreUnavailableError(describe_unavailable(self.url, exc)) from exc
        with connection:
            if options:
                connection.execution_options(**options)
            try:
                yield connection
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise StoreUnavailableError(describe_unavailable(self.url, exc)) from exc
                raise

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that holds the write right from its start, committed at the end, rolled back on error."""
        with self.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent view, and on SQLite no write lock."""
        with self.connect(sqlite_begin="DEFERRED") as connection, connection.begin():
            yield connection
