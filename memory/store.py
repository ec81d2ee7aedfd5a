"""Durable memory state: sessions, turns, summaries, memory items, and a per-session lease.

The relational store (``retrieval.store``: ``<data_dir>/memory.sqlite3`` by default, the shared PostgreSQL database
when ``database_url`` is set) is the source of truth; Chroma holds only the vectors of memory items, keyed by the
ids stored here, so a session can always be deleted completely (ids first from Chroma, then the rows). The lease
column makes turns of one session serial across threads *and* processes: a request takes it with one conditional
UPDATE, and a lease left by a crashed process expires.

Numbering a session's turns and summaries (``MAX + 1``) locks the session's row first (``SELECT … FOR UPDATE``),
so two writers of one session queue on that row while writers of other sessions go on; on SQLite the write
transaction already serialises every writer.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import URL, Connection, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from memory.errors import InvalidNameError, SessionNotFoundError
from retrieval.store import open_store
from retrieval.store.tables import memory_items, sessions, summaries, turns

Tier = Literal["active", "evicted", "summarized"]
"""Where a turn lives: verbatim in the prompt, evicted but not yet in the summary (retried), or summarized."""

ItemKind = Literal["fact", "summary"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


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

    def __init__(self, path: Path, *, database_url: str | URL | None = None) -> None:
        self.path = path
        self._db = open_store(path, database_url, "memory")
        self._namespace_session_ids()

    def close(self) -> None:
        self._db.close()

    def _namespace_session_ids(self) -> None:
        """Data written before ids were per tenant stored a tenant's session under its bare id: give those rows
        their ``session_key`` (once; later opens find nothing to change)."""
        prefix = func.substr(sessions.c.id, 1, func.length(sessions.c.tenant) + 1)
        old_layout = select(sessions.c.id, sessions.c.tenant).where(
            sessions.c.tenant != "", prefix != sessions.c.tenant + "/"
        )
        with self._db.read() as db:
            if db.execute(old_layout.limit(1)).first() is None:
                return
        with self._db.write() as db:
            for session_id, tenant in db.execute(old_layout).all():
                key = session_key(session_id, tenant)
                db.execute(update(sessions).where(sessions.c.id == session_id).values(id=key))
                for table in (turns, summaries, memory_items):
                    db.execute(update(table).where(table.c.session_id == session_id).values(session_id=key))

    @staticmethod
    def _lock_session(db: Connection, key: str) -> None:
        """Hold the session's row until the transaction ends, so numbering its turns is serial per session.

        PostgreSQL takes a row lock; SQLite ignores ``FOR UPDATE``, its write transaction holds the file's lock."""
        db.execute(select(sessions.c.id).where(sessions.c.id == key).with_for_update())

    # ---- sessions ---------------------------------------------------------------------------------------
    def create_session(self, session_id: str | None, *, tenant: str, user: str, collection: str) -> SessionRecord:
        """A new session; ids are per tenant, so one tenant's id never collides with (or reveals) another's."""
        session_id = check_name(uuid.uuid4().hex if session_id is None else session_id, "session id")
        check_name(user, "user")
        key = session_key(session_id, tenant)
        now = time.time()
        row = {
            "id": key,
            "tenant": tenant,
            "user": user,
            "collection": collection,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self._db.write() as db:
                db.execute(insert(sessions).values(**row))
        except IntegrityError:  # the primary key: one session per key, whichever writer came first
            raise InvalidNameError(f"session {session_id!r} already exists") from None
        return self.session(session_id, tenant=tenant)

    def session(self, session_id: str, *, tenant: str) -> SessionRecord:
        query = _SESSION_QUERY.where(sessions.c.id == session_key(session_id, tenant), sessions.c.tenant == tenant)
        with self._db.read() as db:
            row = db.execute(query).first()
        if row is None:
            raise SessionNotFoundError(session_id)
        return SessionRecord(*row)

    def exists(self, session_id: str, *, tenant: str) -> bool:
        query = select(sessions.c.id).where(
            sessions.c.id == session_key(session_id, tenant), sessions.c.tenant == tenant
        )
        with self._db.read() as db:
            return db.execute(query).first() is not None

    def sessions(self, *, tenant: str, user: str | None = None) -> list[SessionRecord]:
        query = _SESSION_QUERY.where(sessions.c.tenant == tenant)
        if user is not None:
            query = query.where(sessions.c.user == user)
        with self._db.read() as db:
            return [SessionRecord(*row) for row in db.execute(query.order_by(sessions.c.updated_at.desc()))]

    def delete_session(self, session_id: str, *, tenant: str) -> None:
        key = self.session(session_id, tenant=tenant).key
        with self._db.write() as db:
            for table in (turns, summaries, memory_items):
                db.execute(delete(table).where(table.c.session_id == key))
            db.execute(delete(sessions).where(sessions.c.id == key))

    # ---- the per-session lease, turns, summaries, items: keyed by ``SessionRecord.key`` -----------------
    def try_lock(self, session_id: str, owner: str, lease_s: float) -> bool:
        """Take the session's lease unless another owner holds an unexpired one: one conditional UPDATE, atomic
        on both engines (on PostgreSQL a concurrent taker waits on the row and re-checks the condition)."""
        now = time.time()
        statement = (
            update(sessions)
            .where(
                sessions.c.id == session_id,
                or_(sessions.c.lock_owner.is_(None), sessions.c.lock_expires < now),
            )
            .values(lock_owner=owner, lock_expires=now + lease_s)
        )
        with self._db.write() as db:
            return db.execute(statement).rowcount == 1

    def unlock(self, session_id: str, owner: str) -> None:
        with self._db.write() as db:
            db.execute(
                update(sessions)
                .where(sessions.c.id == session_id, sessions.c.lock_owner == owner)
                .values(lock_owner=None, lock_expires=None)
            )

    # ---- turns and summaries ----------------------------------------------------------------------------
    def turns(self, session_id: str, tier: Tier | None = None) -> list[Turn]:
        c = turns.c
        query = select(
            c.position, c.question, c.search_query, c.answer, c.tier, c.prompt_tokens, c.memory_tokens, c.created_at
        ).where(c.session_id == session_id)
        if tier is not None:
            query = query.where(c.tier == tier)
        with self._db.read() as db:
            return [Turn(*row) for row in db.execute(query.order_by(c.position))]

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
        """Append a turn at the next position: the session row is locked first, so concurrent turns of one
        session get consecutive positions, never the same one."""
        now = time.time()
        with self._db.write() as db:
            self._lock_session(db, session_id)
            position = db.scalar(
                select(func.coalesce(func.max(turns.c.position) + 1, 0)).where(turns.c.session_id == session_id)
            )
            db.execute(
                insert(turns).values(
                    session_id=session_id,
                    position=position,
                    question=question,
                    search_query=search_query,
                    answer=answer,
                    tier="active",
                    prompt_tokens=prompt_tokens,
                    memory_tokens=memory_tokens,
                    created_at=now,
                )
            )
            db.execute(update(sessions).where(sessions.c.id == session_id).values(updated_at=now))
        return Turn(position, question, search_query, answer, "active", prompt_tokens, memory_tokens, now)

    def set_tier(self, session_id: str, positions: list[int], tier: Tier) -> None:
        if not positions:
            return
        with self._db.write() as db:
            db.execute(
                update(turns).where(turns.c.session_id == session_id, turns.c.position.in_(positions)).values(tier=tier)
            )

    def set_summary(self, session_id: str, text: str, reason: str, summarized: list[int]) -> None:
        """Replace the session summary and mark the turns it now covers, in one transaction."""
        now = time.time()
        with self._db.write() as db:
            self._lock_session(db, session_id)
            version = db.scalar(
                select(func.coalesce(func.max(summaries.c.version) + 1, 0)).where(summaries.c.session_id == session_id)
            )
            db.execute(
                insert(summaries).values(
                    session_id=session_id, version=version, text=text, reason=reason, created_at=now
                )
            )
            db.execute(update(sessions).where(sessions.c.id == session_id).values(summary=text, summary_error=None))
            if summarized:
                db.execute(
                    update(turns)
                    .where(turns.c.session_id == session_id, turns.c.position.in_(summarized))
                    .values(tier="summarized")
                )

    def set_summary_error(self, session_id: str, error: str) -> None:
        with self._db.write() as db:
            db.execute(update(sessions).where(sessions.c.id == session_id).values(summary_error=error))

    def summaries(self, session_id: str) -> list[dict[str, Any]]:
        c = summaries.c
        query = select(c.version, c.text, c.reason, c.created_at).where(c.session_id == session_id).order_by(c.version)
        with self._db.read() as db:
            rows = db.execute(query).all()
        return [{"version": v, "text": t, "reason": r, "created_at": c} for v, t, r, c in rows]

    # ---- memory items (their vectors live in Chroma) ----------------------------------------------------
    def add_item(self, session_id: str, *, tenant: str, user: str, kind: ItemKind, text: str) -> MemoryItem:
        item = MemoryItem(uuid.uuid4().hex, session_id, kind, text, time.time())
        with self._db.write() as db:
            db.execute(
                insert(memory_items).values(
                    id=item.id,
                    session_id=session_id,
                    tenant=tenant,
                    user=user,
                    kind=kind,
                    text=text,
                    created_at=item.created_at,
                )
            )
        return item

    def items(
        self, *, session_id: str | None = None, tenant: str | None = None, user: str | None = None
    ) -> list[MemoryItem]:
        c = memory_items.c
        query = select(c.id, c.session_id, c.kind, c.text, c.created_at)
        for column, value in ((c.session_id, session_id), (c.tenant, tenant), (c.user, user)):
            if value is not None:
                query = query.where(column == value)
        with self._db.read() as db:
            return [MemoryItem(*row) for row in db.execute(query.order_by(c.created_at))]

    def delete_items(self, ids: list[str]) -> None:
        if not ids:
            return
        with self._db.write() as db:
            db.execute(delete(memory_items).where(memory_items.c.id.in_(ids)))


_TURN_COUNT = select(func.count()).select_from(turns).where(turns.c.session_id == sessions.c.id).scalar_subquery()
_SESSION_QUERY = select(
    sessions.c.id,
    sessions.c.tenant,
    sessions.c.user,
    sessions.c.collection,
    sessions.c.summary,
    sessions.c.summary_error,
    sessions.c.created_at,
    sessions.c.updated_at,
    _TURN_COUNT,
)
