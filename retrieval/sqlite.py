"""One way to open ragline's SQLite files: the manifest, ingestion jobs and conversation memory share it.

WAL lets readers (API requests, the UI) run while an ingestion or a conversation turn writes; autocommit mode
(``isolation_level=None``) leaves transactions to explicit ``BEGIN``s, and the 30 s busy timeout makes a second
process wait for a lock instead of failing at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating the folder and tables when needed) a connection usable from any thread of the process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(schema)
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception: the write lock is taken up front, so two
    writers queue on the busy timeout instead of failing half-way through."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
