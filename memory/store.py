"""Durable memory state in SQLite: sessions, turns, summaries, memory items, and a per-session lease.

SQLite is the source of truth; Chroma holds only the vectors of memory items, keyed by the ids stored here, so a
session can always be deleted completely (ids first from Chroma, then the rows). The lease column makes turns of
one session serial across threads *and* processes: a request takes it with one conditional UPDATE, and a lease
left by a crashed process expires.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from memory.errors import InvalidNameError, SessionNotFoundError
from retrieval.sqlite import open_database, transaction

Tier = Literal["active", "evicted", "summarized"]
"""Where a turn lives: verbatim in the prompt, evicted but not yet in the summary (retried), or summarized."""

ItemKind = Literal["fact", "summary"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT NOT NULL PRIMARY KEY,
    tenant TEXT NOT NULL,
    user TEXT NOT NULL,
    collection TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    summary_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    lock_owner TEXT,
    lock_expires REAL
);
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    search_query TEXT,
    answer TEXT NOT NULL,
    tier TEXT NOT NULL CHECK (tier IN ('active', 'evicted', 'summarized')),
    prompt_tokens INTEGER,
    memory_tokens INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    PRIMARY KEY (session_id, position)
);
CREATE TABLE IF NOT EXISTS summaries (
    session_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    text TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (session_id, version)
);
CREATE TABLE IF NOT EXISTS memory_items (
    id TEXT NOT NULL PRIMARY KEY,
    session_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    user TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('fact', 'summary')),
    text TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_session ON memory_items (session_id);
CREATE INDEX IF NOT EXISTS items_by_user ON memory_items (tenant, user);
"""


def check_name(value: str, what: str) -> str:
    """Session ids and user names go into SQL rows and Chroma collection names: keep them plain."""
    if not _NAME.fullmatch(value):
        raise InvalidNameError(f"{what} {value!r} must be 1-128 letters, digits, '.', '-' or '_' (not first)")
    return value


def session_key(session_id: str, tenant: str) -> str:
    """The stored id of a tenant's session: ids are per tenant, so two tenants may both have a session ``demo``.

    Without tenants the key is the id itself. ``/`` cannot occur in a session id or a tenant name, so the key
    splits back unambiguously.
    """
    return f"{tenant}/{session_id}" if tenant else session_id


@dataclass(frozen=True)
class SessionRecord:
    key: str
    """The stored id (``session_key``): what the per-session rows (turns, summaries, items, the lease) hang on."""
    tenant: str
    user: str
    collection: str
    summary: str
    summary_error: str | None
    created_at: float
    updated_at: float
    turns: int

    @property
    def id(self) -> str:
        """The id the tenant knows the session by."""
        return self.key.removeprefix(f"{self.tenant}/") if self.tenant else self.key

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        del record["key"]
        return {"id": self.id, **record}


@dataclass(frozen=True)
class Turn:
    position: int
    question: str
    search_query: str | None
    answer: str
    tier: Tier
    prompt_tokens: int | None
    memory_tokens: int
    created_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MemoryItem:
    id: str
    session_id: str
    kind: ItemKind
    text: str
    created_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class MemoryStore:
    """All memory rows of a data directory. Every method scopes by tenant ('' when there are no tenants)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_database(path, _SCHEMA)
        # One connection serves every thread of the process (API workers, benchmark threads): a transaction must
        # not interleave with another thread's statements, so every use of the connection holds this lock.
        self._lock = threading.RLock()
        self._namespace_session_ids()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._db.execute(sql, params).rowcount

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, transaction(self._db) as db:
            yield db

    def _namespace_session_ids(self) -> None:
        """Data written before ids were per tenant stored a tenant's session under its bare id: give those rows
        their ``session_key`` (once; later opens find nothing to change)."""
        with self._transaction() as db:
            old = db.execute(
                "SELECT id, tenant FROM sessions "
                "WHERE tenant != '' AND substr(id, 1, length(tenant) + 1) != tenant || '/'"
            ).fetchall()
            for session_id, tenant in old:
                key = session_key(session_id, tenant)
                db.execute("UPDATE sessions SET id = ? WHERE id = ?", (key, session_id))
                for table in ("turns", "summaries", "memory_items"):
                    db.execute(f"UPDATE {table} SET session_id = ? WHERE session_id = ?", (key, session_id))

    # ---- sessions ---------------------------------------------------------------------------------------
    def create_session(self, session_id: str | None, *, tenant: str, user: str, collection: str) -> SessionRecord:
        """A new session; ids are per tenant, so one tenant's id never collides with (or reveals) another's."""
        session_id = check_name(uuid.uuid4().hex if session_id is None else session_id, "session id")
        check_name(user, "user")
        key = session_key(session_id, tenant)
        now = time.time()
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM sessions WHERE id = ?", (key,)).fetchone():
                raise InvalidNameError(f"session {session_id!r} already exists")
            db.execute(
                "INSERT INTO sessions (id, tenant, user, collection, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key, tenant, user, collection, now, now),
            )
        return self.session(session_id, tenant=tenant)

    def session(self, session_id: str, *, tenant: str) -> SessionRecord:
        rows = self._query(
            "SELECT s.id, s.tenant, s.user, s.collection, s.summary, s.summary_error, s.created_at, s.updated_at, "
            "(SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id) FROM sessions s WHERE s.id = ? AND s.tenant = ?",
            (session_key(session_id, tenant), tenant),
        )
        if not rows:
            raise SessionNotFoundError(session_id)
        return SessionRecord(*rows[0])

    def exists(self, session_id: str, *, tenant: str) -> bool:
        query = "SELECT 1 FROM sessions WHERE id = ? AND tenant = ?"
        return bool(self._query(query, (session_key(session_id, tenant), tenant)))

    def sessions(self, *, tenant: str, user: str | None = None) -> list[SessionRecord]:
        query = (
            "SELECT s.id, s.tenant, s.user, s.collection, s.summary, s.summary_error, s.created_at, s.updated_at, "
            "(SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id) FROM sessions s WHERE s.tenant = ?"
        )
        params: tuple[str, ...] = (tenant,)
        if user is not None:
            query += " AND s.user = ?"
            params += (user,)
        return [SessionRecord(*row) for row in self._query(query + " ORDER BY s.updated_at DESC", params)]

    def delete_session(self, session_id: str, *, tenant: str) -> None:
        key = self.session(session_id, tenant=tenant).key
        with self._transaction() as db:
            for table in ("turns", "summaries", "memory_items"):
                db.execute(f"DELETE FROM {table} WHERE session_id = ?", (key,))
            db.execute("DELETE FROM sessions WHERE id = ?", (key,))

    # ---- the per-session lease, turns, summaries, items: keyed by ``SessionRecord.key`` -----------------
    def try_lock(self, session_id: str, owner: str, lease_s: float) -> bool:
        now = time.time()
        changed = self._execute(
            "UPDATE sessions SET lock_owner = ?, lock_expires = ? "
            "WHERE id = ? AND (lock_owner IS NULL OR lock_expires < ?)",
            (owner, now + lease_s, session_id, now),
        )
        return changed == 1

    def unlock(self, session_id: str, owner: str) -> None:
        self._execute(
            "UPDATE sessions SET lock_owner = NULL, lock_expires = NULL WHERE id = ? AND lock_owner = ?",
            (session_id, owner),
        )

    # ---- turns and summaries ----------------------------------------------------------------------------
    def turns(self, session_id: str, tier: Tier | None = None) -> list[Turn]:
        query = (
            "SELECT position, question, search_query, answer, tier, prompt_tokens, memory_tokens, created_at "
            "FROM turns WHERE session_id = ?"
        )
        params: tuple[Any, ...] = (session_id,)
        if tier is not None:
            query += " AND tier = ?"
            params += (tier,)
        return [Turn(*row) for row in self._query(query + " ORDER BY position", params)]

    def add_turn(
        self,
        session_id: str,
        *,
        question: str,
        search_query: str | None,
        answer: str,
        prompt_tokens: int | None,
        memory_tokens: int,
    ) -> Turn:
        now = time.time()
        with self._transaction() as db:
            (position,) = db.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM turns WHERE session_id = ?", (session_id,)
            ).fetchone()
            db.execute(
                "INSERT INTO turns (session_id, position, question, search_query, answer, tier, prompt_tokens, "
                "memory_tokens, created_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?)",
                (session_id, position, question, search_query, answer, prompt_tokens, memory_tokens, now),
            )
            db.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id))
        return Turn(position, question, search_query, answer, "active", prompt_tokens, memory_tokens, now)

    def set_tier(self, session_id: str, positions: list[int], tier: Tier) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE turns SET tier = ? WHERE session_id = ? AND position = ?",
                [(tier, session_id, p) for p in positions],
            )

    def set_summary(self, session_id: str, text: str, reason: str, summarized: list[int]) -> None:
        """Replace the session summary and mark the turns it now covers, in one transaction."""
        now = time.time()
        with self._transaction() as db:
            (version,) = db.execute(
                "SELECT COALESCE(MAX(version) + 1, 0) FROM summaries WHERE session_id = ?", (session_id,)
            ).fetchone()
            db.execute(
                "INSERT INTO summaries (session_id, version, text, reason, created_at) VALUES (?, ?, ?, ?, ?)",
                (session_id, version, text, reason, now),
            )
            db.execute("UPDATE sessions SET summary = ?, summary_error = NULL WHERE id = ?", (text, session_id))
            db.executemany(
                "UPDATE turns SET tier = 'summarized' WHERE session_id = ? AND position = ?",
                [(session_id, p) for p in summarized],
            )

    def set_summary_error(self, session_id: str, error: str) -> None:
        self._execute("UPDATE sessions SET summary_error = ? WHERE id = ?", (error, session_id))

    def summaries(self, session_id: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT version, text, reason, created_at FROM summaries WHERE session_id = ? ORDER BY version",
            (session_id,),
        )
        return [{"version": v, "text": t, "reason": r, "created_at": c} for v, t, r, c in rows]

    # ---- memory items (their vectors live in Chroma) ----------------------------------------------------
    def add_item(self, session_id: str, *, tenant: str, user: str, kind: ItemKind, text: str) -> MemoryItem:
        item = MemoryItem(uuid.uuid4().hex, session_id, kind, text, time.time())
        self._execute(
            "INSERT INTO memory_items (id, session_id, tenant, user, kind, text, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item.id, session_id, tenant, user, kind, text, item.created_at),
        )
        return item

    def items(
        self, *, session_id: str | None = None, tenant: str | None = None, user: str | None = None
    ) -> list[MemoryItem]:
        query = "SELECT id, session_id, kind, text, created_at FROM memory_items WHERE 1 = 1"
        params: tuple[str, ...] = ()
        for column, value in (("session_id", session_id), ("tenant", tenant), ("user", user)):
            if value is not None:
                query += f" AND {column} = ?"
                params += (value,)
        return [MemoryItem(*row) for row in self._query(query + " ORDER BY created_at", params)]

    def delete_items(self, ids: list[str]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM memory_items WHERE id = ?", [(i,) for i in ids])
