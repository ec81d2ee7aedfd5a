"""Assembly under the memory budget, counted with the generator's real tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.query.budget import BudgetPlanner
from app.token_counter import ChatTemplateTokenCounter
from memory.persistent import Recalled
from memory.store import Turn
from memory.tiers import MemoryBudget, assemble


@pytest.fixture(scope="module")
def counter(generator_dir: Path) -> ChatTemplateTokenCounter:
    return ChatTemplateTokenCounter(generator_dir)


def turn(position: int, words: int = 10) -> Turn:
    return Turn(position, f"question {position} " + "word " * words, None, "answer " * words, "active", None, 0, 0.0)


def recalled(score: float) -> Recalled:
    return Recalled(id=f"r{score}", kind="fact", text=f"a recalled fact scored {score}", score=score, session_id="s")


def test_active_turns_beyond_the_limit_are_evicted_oldest_first(counter: ChatTemplateTokenCounter) -> None:
    context = assemble("", [], [turn(i) for i in range(4)], MemoryBudget(10_000, 0.7, 3), counter)
    # Evicted down to one below the limit, so the summary is rewritten every other turn.
    assert [t.position for t in context.evicted] == [0, 1]
    assert [t.position for t in context.active] == [2, 3]
    assert [m["role"] for m in context.messages] == ["user", "assistant"] * 2


def test_pressure_evicts_active_then_least_relevant_recall(counter: ChatTemplateTokenCounter) -> None:
    active = [turn(i, words=60) for i in range(3)]
    items = [recalled(0.9), recalled(0.4)]
    loose = assemble("the user is an EU customer", items, active, MemoryBudget(10_000, 0.7, 3), counter)
    assert not loose.evicted and not loose.dropped_recall
    budget = MemoryBudget(loose.tokens - 100, 0.7, 3)
    tight = assemble("the user is an EU customer", items, active, budget, counter)
    assert tight.tokens < budget.threshold
    assert [t.position for t in tight.evicted] == [0, 1][: len(tight.evicted)]
    assert tight.active[-1].position == 2 or not tight.active
    if tight.dropped_recall:  # the weaker recall goes before the stronger one
        assert tight.dropped_recall[0].score == 0.4
    assert "EU customer" in tight.messages[0]["content"]
    assert counter.count_messages(tight.messages) == tight.tokens


def test_an_oversized_summary_is_truncated_to_fit(counter: ChatTemplateTokenCounter) -> None:
    summary = "constraint: EU customer. " + "filler " * 400
    budget = MemoryBudget(200, 0.7, 3)
    context = assemble(summary, [], [], budget, counter)
    assert context.summary_truncated
    assert context.tokens < budget.threshold
    assert "constraint: EU customer." in context.messages[0]["content"]


def test_budget_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="pressure"):
        MemoryBudget(100, 1.5, 3)
    with pytest.raises(ValueError, match="active_turns"):
        MemoryBudget(100, 0.7, 0)


@pytest.mark.parametrize("summary", ["the user is an EU customer", ""], ids=["with-summary", "active-turns-only"])
def test_memory_counts_a_history_as_the_prompt_budget_charges_it(
    counter: ChatTemplateTokenCounter, summary: str
) -> None:
    context = assemble(
        summary, [recalled(0.9)] if summary else [], [turn(0), turn(1)], MemoryBudget(10_000, 0.7, 3), counter
    )
    budget, kept = BudgetPlanner(counter, 8_192, 512).plan(
        "You answer from the sources.", context.messages, "question?"
    )
    assert kept == context.messages
    assert context.tokens == budget.H
