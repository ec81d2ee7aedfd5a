"""Conversations through the real pipeline, vLLM, Chroma and SQLite.

Answers are kept short (``max_answer_tokens``) and the active window small, so a few turns exercise eviction,
the summary, recall and the rewrite of a follow-up.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from memory.errors import SessionBusyError, SessionNotFoundError
from memory.service import MemoryConfig, MemoryService

pytestmark = pytest.mark.vllm
SHORT = {"max_answer_tokens": 24}


class FailingSummarizer:
    """A fake: a generator that is down for summaries only, a fault the real service cannot be made to show
    while the same server keeps answering."""

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, prompts: Sequence[str], *, max_tokens: int) -> list[str]:
        self.calls += 1
        raise ConnectionError("summary service down (fake)")


def _small(service: MemoryService) -> MemoryService:
    service.config = MemoryConfig(active_turns=1, summary_tokens=128, budget_tokens=1024, pressure=0.7)
    return service


def _memory_entry(answer: object) -> dict:
    stages = answer.trace["stages"]  # type: ignore[attr-defined]
    assert stages[0]["stage"] == "memory"
    return stages[0]


def test_follow_up_is_rewritten_and_memory_survives_a_restart(memory_service: MemoryService) -> None:
    service = _small(memory_service)
    session = service.create_session("refunds", user="ana")
    first = service.ask(session.id, "What is the refund window for EU customers?", options=SHORT)
    assert _memory_entry(first)["turn"] == 0 and "rewritten_query" not in _memory_entry(first)

    follow_up = service.ask(session.id, "and for UK customers?", options=SHORT)
    entry = _memory_entry(follow_up)
    assert "refund" in entry["rewritten_query"].lower()  # the follow-up became a standalone search query
    assert follow_up.trace["search_query"] == entry["rewritten_query"]

    third = service.ask(session.id, "How are refunds requested there?", options=SHORT)
    entry = _memory_entry(third)
    assert entry["evicted_turns"] == [0] and entry["summarized_turns"] == [0] and entry["summary_updated"]
    export = service.export(session.id)
    assert [t["tier"] for t in export["turns"]] == ["summarized", "active", "active"]
    assert export["session"]["summary"] and export["memory_items"][0]["text"].startswith("What is the refund window")

    # A new service over the same SQLite file and Chroma (a restarted process) sees the same session.
    restarted = MemoryService(
        type(service.store)(service.store.path),
        service.persistent,
        service.pipeline,
        service.generator,
        service.counter,
        service.config,
    )
    assert restarted.export(session.id) == export
    recalled = service.persistent.recall("refund window EU", tenant="", user="ana", k=3, min_score=0.0)
    assert recalled and recalled[0].text.startswith("What is the refund window")

    service.delete_session(session.id)
    assert service.persistent.count(tenant="", user="ana") == 0
    with pytest.raises(SessionNotFoundError):
        restarted.export(session.id)


def test_a_failed_summary_keeps_the_turn_and_is_retried(memory_service: MemoryService) -> None:
    service = _small(memory_service)
    working = service.summarizer
    service.summarizer = failing = FailingSummarizer()
    session = service.create_session("flaky", user="bo")
    for question in ("What does error ERR-4012 mean?", "How is it fixed?"):  # two earlier turns, as stored
        service.store.add_turn(
            session.id,
            question=question,
            search_query=None,
            answer="See the runbook [1].",
            prompt_tokens=None,
            memory_tokens=0,
        )
    second = service.ask(session.id, "Who should be paged?", options=SHORT)  # evicts turn 0; its summary fails
    entry = _memory_entry(second)
    assert failing.calls == 1 and "summary service down" in entry["summary_error"]
    assert second.text  # the turn itself succeeded
    assert service.session(session.id).summary_error and [t.tier for t in service.store.turns(session.id)] == [
        "evicted",
        "active",
        "active",
    ]
    # The evicted user statement is already recallable while the summary is pending.
    assert service.store.items(session_id=session.id)[0].text == "What does error ERR-4012 mean?"

    service.summarizer = working
    third = service.ask(session.id, "How long is a gateway token valid?", options=SHORT)
    entry = _memory_entry(third)
    assert entry["summarized_turns"][0] == 0 and entry["summary_updated"] and "summary_error" not in entry
    assert service.session(session.id).summary_error is None


def test_unknown_busy_and_concurrent_sessions(memory_service: MemoryService) -> None:
    with pytest.raises(SessionNotFoundError):
        memory_service.ask("no-such-session", "hello?")
    session = memory_service.create_session("shared", user="cy")

    assert memory_service.store.try_lock(session.id, "another-process", lease_s=60)
    memory_service.lock_wait_s = 0.2
    with pytest.raises(SessionBusyError, match="another request"):
        memory_service.ask(session.id, "What does ERR-5003 mean?", options=SHORT)
    memory_service.store.unlock(session.id, "another-process")

    memory_service.lock_wait_s = 120
    errors: list[BaseException] = []

    def ask(question: str) -> None:
        try:
            memory_service.ask(session.id, question, options=SHORT)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(q,)) for q in ("What does ERR-5003 mean?", "What is ERR-2290?")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    turns = memory_service.store.turns(session.id)
    assert [t.position for t in turns] == [0, 1]
    # Serialized: the second turn was prepared after the first was stored, so it saw it in its memory.
    assert turns[1].memory_tokens > 0
