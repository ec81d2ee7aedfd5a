"""``MemoryService``: sessions with tiered memory around the query pipeline, for the CLI, the API and the UI.

A turn: take the session's lease → rewrite a follow-up into a standalone search query → recall persistent items
by relevance → assemble the memory context under its budget (evicting under pressure) → fold evicted exchanges
into the session summary → answer with ``history`` and ``search_query`` → store the turn → record a ``memory``
trace entry (what was evicted, recalled and summarized) → release the lease.

A summary call that fails does not fail the turn: the evicted exchanges stay marked ``evicted`` (their user
statements are already in persistent memory, so they can still be recalled), the error is logged and kept on the
session, and the next turn retries them.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from memory.errors import SessionBusyError
from memory.persistent import PersistentMemory
from memory.prompts import clean_rewrite, compress_prompt, keeps_question, rewrite_prompt, summary_prompt
from memory.store import MemoryStore, SessionRecord, Turn, check_name
from memory.tiers import MemoryBudget, MemoryContext, assemble
from retrieval.llm_affinity import llm_affinity
from retrieval.protocols import AnswersQuestions, Message, TextGenerator, TokenCounter
from retrieval.types import TraceEntry

log = logging.getLogger(__name__)

_REWRITE_TOKENS = 48
_WORDS_PER_TOKEN = 0.6


@dataclass(frozen=True)
class MemoryConfig:
    active_turns: int = 3
    summary_tokens: int = 512
    budget_tokens: int = 1024
    pressure: float = 0.7
    recall_k: int = 3
    recall_min_score: float = 0.3
    max_question_chars: int = 4000

    def __post_init__(self) -> None:
        if self.summary_tokens >= self.budget_tokens * self.pressure:
            raise ValueError(
                f"memory_summary_tokens ({self.summary_tokens}) must stay below memory_budget_tokens × "
                f"memory_pressure ({self.budget_tokens} × {self.pressure}), or the summary alone fills the budget"
            )

    @property
    def budget(self) -> MemoryBudget:
        return MemoryBudget(self.budget_tokens, self.pressure, self.active_turns)


@dataclass
class _Prepared:
    session: SessionRecord
    context: MemoryContext
    search_query: str | None
    details: dict[str, Any]
    ms: float


class MemoryService:
    def __init__(
        self,
        store: MemoryStore,
        persistent: PersistentMemory,
        pipeline: AnswersQuestions,
        generator: TextGenerator,
        counter: TokenCounter,
        config: MemoryConfig | None = None,
        *,
        summarizer: TextGenerator | None = None,
        lock_wait_s: float = 60.0,
        lease_s: float = 900.0,
    ) -> None:
        """``summarizer`` defaults to ``generator``; it is separate so a summary failure can be tested alone."""
        if lock_wait_s < 0 or lease_s <= 0:
            raise ValueError(f"lock_wait_s must be >= 0 and lease_s > 0, got {lock_wait_s}, {lease_s}")
        self.store = store
        self.persistent = persistent
        self.pipeline = pipeline
        self.generator = generator
        self.summarizer = summarizer or generator
        self.counter = counter
        self.config = config or MemoryConfig()
        self.lock_wait_s = lock_wait_s
        self.lease_s = lease_s

    # ---- sessions ---------------------------------------------------------------------------------------
    def create_session(
        self,
        session_id: str | None = None,
        *,
        user: str = "default",
        collection: str = "sample",
        tenant: str | None = None,
    ) -> SessionRecord:
        return self.store.create_session(session_id, tenant=tenant or "", user=user, collection=collection)

    def open_session(
        self, session_id: str, *, user: str = "default", collection: str = "sample", tenant: str | None = None
    ) -> SessionRecord:
        """The named session, created on first use (the CLI's ``--session NAME``)."""
        check_name(session_id, "session id")
        if self.store.exists(session_id, tenant=tenant or ""):
            return self.store.session(session_id, tenant=tenant or "")
        return self.create_session(session_id, user=user, collection=collection, tenant=tenant)

    def session(self, session_id: str, *, tenant: str | None = None) -> SessionRecord:
        return self.store.session(session_id, tenant=tenant or "")

    def list_sessions(self, *, tenant: str | None = None, user: str | None = None) -> list[SessionRecord]:
        return self.store.sessions(tenant=tenant or "", user=user)

    def export(self, session_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        """Everything memory holds for a session: turns with their tier, summary versions, memory items."""
        session = self.store.session(session_id, tenant=tenant or "")
        return {
            "session": session.as_dict(),
            "turns": [t.as_dict() for t in self.store.turns(session.key)],
            "summaries": self.store.summaries(session.key),
            "memory_items": [
                {**i.as_dict(), "session_id": session.id} for i in self.store.items(session_id=session.key)
            ],
        }

    def delete_session(self, session_id: str, *, tenant: str | None = None) -> None:
        """Remove the session's turns, summaries and memory items: vectors from Chroma first, then the rows."""
        tenant = tenant or ""
        with self._lease(session_id, tenant):
            session = self.store.session(session_id, tenant=tenant)
            items = self.store.items(session_id=session.key)
            self.persistent.forget([i.id for i in items], tenant=tenant, user=session.user)
        self.store.delete_session(session_id, tenant=tenant)

    def forget_user(self, user: str, *, tenant: str | None = None) -> int:
        """Delete every session of ``user`` (and so all of the user's memory); returns how many."""
        sessions = self.store.sessions(tenant=tenant or "", user=user)
        for session in sessions:
            self.delete_session(session.id, tenant=tenant)
        return len(sessions)

    def conversation(self, session_id: str, *, tenant: str | None = None) -> Conversation:
        """A handle on one existing session (what a chat UI keeps between turns)."""
        self.store.session(session_id, tenant=tenant or "")
        return Conversation(self, session_id, tenant)

    # ---- turns ------------------------------------------------------------------------------------------
    def ask(
        self,
        session_id: str,
        question: str,
        *,
        tenant: str | None = None,
        filters: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        """One turn, answered in full; returns the pipeline's ``Answer`` with a ``memory`` trace entry."""
        tenant = tenant or ""
        with self._lease(session_id, tenant) as key, llm_affinity(key):
            prepared = self._prepare(session_id, question, tenant)
            answer = self.pipeline.run(
                question,
                prepared.session.collection,
                filters,
                history=prepared.context.messages,
                search_query=prepared.search_query,
                options=options,
            )
            self._finish(prepared, question, answer)
        return answer

    def stream(
        self,
        session_id: str,
        question: str,
        *,
        tenant: str | None = None,
        filters: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[Any]:
        """Answer text deltas, then the final ``Answer``; the lease is held until the turn is stored."""
        tenant = tenant or ""
        with self._lease(session_id, tenant) as key, llm_affinity(key):
            prepared = self._prepare(session_id, question, tenant)
            answer = None
            for part in self.pipeline.stream(
                question,
                prepared.session.collection,
                filters,
                history=prepared.context.messages,
                search_query=prepared.search_query,
                options=options,
            ):
                if isinstance(part, str):
                    yield part
                else:
                    answer = part
            if answer is None:
                raise RuntimeError("the pipeline's stream ended without a final answer")
            self._finish(prepared, question, answer)
        yield answer

    def history(self, session_id: str, question: str, *, tenant: str | None = None) -> list[Message]:
        """The memory messages the next turn would get, without side effects (for inspection and tests)."""
        tenant = tenant or ""
        session = self.store.session(session_id, tenant=tenant)
        recalled = self.persistent.recall(
            question, tenant=tenant, user=session.user, k=self.config.recall_k, min_score=self.config.recall_min_score
        )
        active = self.store.turns(session.key, "active")
        return assemble(session.summary, recalled, active, self.config.budget, self.counter).messages

    # ---- internals --------------------------------------------------------------------------------------
    @contextmanager
    def _lease(self, session_id: str, tenant: str) -> Iterator[str]:
        """Hold the session's lease: serial across threads and processes, a clear error after ``lock_wait_s``.
        Yields the session's key, which also routes the turn's LLM requests to one replica (its prefix cache)."""
        key = self.store.session(session_id, tenant=tenant).key  # unknown id → SessionNotFoundError, before waiting
        owner = uuid.uuid4().hex
        started = time.monotonic()
        while not self.store.try_lock(key, owner, self.lease_s):
            waited = time.monotonic() - started
            if waited >= self.lock_wait_s:
                raise SessionBusyError(session_id, waited)
            time.sleep(0.05)
        try:
            yield key
        finally:
            self.store.unlock(key, owner)

    def _prepare(self, session_id: str, question: str, tenant: str) -> _Prepared:
        started = time.perf_counter()
        if not question.strip():
            raise ValueError("the question is empty")
        session = self.store.session(session_id, tenant=tenant)
        active = self.store.turns(session.key, "active")
        details: dict[str, Any] = {"session_id": session_id}

        search_query = None
        if active or session.summary:
            prompt = rewrite_prompt(question, session.summary, active[-self.config.active_turns :])
            rewritten = self.generator.complete([prompt], max_tokens=_REWRITE_TOKENS)[0]
            search_query = clean_rewrite(rewritten, question, self.config.max_question_chars)
            if not keeps_question(search_query, question):
                details["rewrite_rejected"] = search_query
                search_query = question
            details["rewritten_query"] = search_query

        recalled = self.persistent.recall(
            search_query or question,
            tenant=tenant,
            user=session.user,
            k=self.config.recall_k,
            min_score=self.config.recall_min_score,
        )
        context = assemble(session.summary, recalled, active, self.config.budget, self.counter)
        evicted = list(context.evicted)
        self._evict(session, context.evicted, tenant)
        summary_details = self._summarize(session, tenant)
        details.update(summary_details)
        if summary_details.get("summary_updated"):
            session = self.store.session(session_id, tenant=tenant)
            context = assemble(session.summary, context.recalled, context.active, self.config.budget, self.counter)
            self._evict(session, context.evicted, tenant)  # the next turn summarizes these
            evicted += context.evicted
        context.evicted = evicted
        details.update(context.details())
        return _Prepared(session, context, search_query, details, (time.perf_counter() - started) * 1000)

    def _evict(self, session: SessionRecord, turns: list[Turn], tenant: str) -> None:
        """Active → evicted: the user's words become recallable facts before the summary absorbs the exchange."""
        if not turns:
            return
        self.store.set_tier(session.key, [t.position for t in turns], "evicted")
        items = [
            self.store.add_item(session.key, tenant=tenant, user=session.user, kind="fact", text=t.question)
            for t in turns
        ]
        self.persistent.remember(items, tenant=tenant, user=session.user)

    def _summarize(self, session: SessionRecord, tenant: str) -> dict[str, Any]:
        """Fold evicted exchanges into the summary; archive and compress a summary under pressure."""
        pending = self.store.turns(session.key, "evicted")
        if not pending:
            return {}
        details: dict[str, Any] = {"summarized_turns": [t.position for t in pending]}
        limit = self.config.summary_tokens
        try:
            prompt = summary_prompt(session.summary, pending, int(limit * _WORDS_PER_TOKEN))
            summary = self.summarizer.complete([prompt], max_tokens=limit)[0].strip()
            reason = "fold"
            if self.counter.count(summary) >= limit * self.config.pressure:
                archived = self.store.add_item(
                    session.key, tenant=tenant, user=session.user, kind="summary", text=summary
                )
                self.persistent.remember([archived], tenant=tenant, user=session.user)
                details["archived_summary"] = archived.id
                prompt = compress_prompt(summary, int(limit * _WORDS_PER_TOKEN / 2))
                summary = self.summarizer.complete([prompt], max_tokens=limit // 2)[0].strip()
                reason = "compress"
        except Exception as exc:  # any failure of the summarizer: the turn goes on without a new summary
            message = f"{type(exc).__name__}: {exc}"
            log.warning("session %s: summary failed, %d turn(s) stay pending: %s", session.id, len(pending), message)
            self.store.set_summary_error(session.key, message)
            details["summary_error"] = message
            return details
        self.store.set_summary(session.key, summary, reason, [t.position for t in pending])
        details.update(summary_updated=True, summary_tokens=self.counter.count(summary))
        return details

    def _finish(self, prepared: _Prepared, question: str, answer: Any) -> None:
        prompt_tokens = next(
            (s.get("prompt_tokens") for s in answer.trace.get("stages", []) if s.get("stage") == "generate"), None
        )
        turn = self.store.add_turn(
            prepared.session.key,
            question=question,
            search_query=prepared.search_query,
            answer=answer.text,
            prompt_tokens=prompt_tokens,
            memory_tokens=prepared.context.tokens,
        )
        entry = TraceEntry(
            stage="memory",
            items_in=len(prepared.context.active) + len(prepared.context.recalled),
            items_out=len(prepared.context.messages),
            ms=prepared.ms,
            details={**prepared.details, "turn": turn.position},
        )
        answer.trace.setdefault("stages", []).insert(0, entry.as_dict())


@dataclass(frozen=True)
class Conversation:
    """One session of a ``MemoryService``: ``ask``/``stream`` a turn, ``export`` it, ``delete`` it."""

    service: MemoryService
    session_id: str
    tenant: str | None = None

    def ask(self, question: str, **kwargs: Any) -> Any:
        return self.service.ask(self.session_id, question, tenant=self.tenant, **kwargs)

    def stream(self, question: str, **kwargs: Any) -> Iterator[Any]:
        return self.service.stream(self.session_id, question, tenant=self.tenant, **kwargs)

    def export(self) -> dict[str, Any]:
        return self.service.export(self.session_id, tenant=self.tenant)

    def delete(self) -> None:
        self.service.delete_session(self.session_id, tenant=self.tenant)
