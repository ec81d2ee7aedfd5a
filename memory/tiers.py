"""Assembling the memory context (the H term) and deciding what to evict under pressure.

The context is one system message (session summary, then recalled items) followed by the active exchanges as
user/assistant messages. It is laid out stable-part-first so vLLM's prefix cache can reuse it from turn to turn.
Eviction order, least critical first: active exchanges beyond the configured count, then the oldest active
exchange (it is already on its way into the summary), then the least relevant recalled item, and, as a last
resort, the tail of an over-long summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from memory.persistent import Recalled
from memory.store import Turn
from retrieval.protocols import Message, TokenCounter

MEMORY_PREAMBLE = (
    "Conversation memory. Use it to understand the user's questions and keep to the constraints and facts the "
    "user gave earlier; facts about the documents still need a numbered source."
)


@dataclass(frozen=True)
class MemoryBudget:
    budget_tokens: int
    pressure: float
    active_turns: int

    def __post_init__(self) -> None:
        if self.budget_tokens <= 0:
            raise ValueError(f"budget_tokens must be positive, got {self.budget_tokens}")
        if not 0 < self.pressure <= 1:
            raise ValueError(f"pressure must be in (0, 1], got {self.pressure}")
        if self.active_turns < 1:
            raise ValueError(f"active_turns must be at least 1, got {self.active_turns}")

    @property
    def threshold(self) -> int:
        return int(self.budget_tokens * self.pressure)


@dataclass
class MemoryContext:
    messages: list[Message]
    tokens: int
    active: list[Turn]
    recalled: list[Recalled]
    evicted: list[Turn] = field(default_factory=list)
    dropped_recall: list[Recalled] = field(default_factory=list)
    summary_truncated: bool = False

    def details(self) -> dict[str, Any]:
        return {
            "memory_tokens": self.tokens,
            "active_turns": [t.position for t in self.active],
            "evicted_turns": [t.position for t in self.evicted],
            "recalled": [r.as_dict() for r in self.recalled],
            "dropped_recall": [r.id for r in self.dropped_recall],
            "summary_truncated": self.summary_truncated,
        }


def build_messages(summary: str, recalled: Sequence[Recalled], active: Sequence[Turn]) -> list[Message]:
    parts: list[str] = []
    if summary.strip():
        parts.append(f"Summary of this conversation so far:\n{summary.strip()}")
    if recalled:
        parts.append("Recalled from earlier:\n" + "\n".join(f"- {r.text.strip()}" for r in recalled))
    messages: list[Message] = []
    if parts:
        messages.append({"role": "system", "content": MEMORY_PREAMBLE + "\n\n" + "\n\n".join(parts)})
    for turn in active:
        messages.append({"role": "user", "content": turn.question})
        messages.append({"role": "assistant", "content": turn.answer})
    return messages


def _truncate(text: str, counter: TokenCounter, tokens: int) -> str:
    """Cut ``text`` at a word boundary so it takes at most ``tokens`` tokens (binary search on words)."""
    words = text.split()
    low, high = 0, len(words)
    while low < high:
        middle = (low + high + 1) // 2
        if counter.count(" ".join(words[:middle])) <= tokens:
            low = middle
        else:
            high = middle - 1
    return " ".join(words[:low])


def assemble(
    summary: str,
    recalled: Sequence[Recalled],
    active: Sequence[Turn],
    budget: MemoryBudget,
    counter: TokenCounter,
) -> MemoryContext:
    """The memory messages under ``budget``: keeps them below the pressure threshold by evicting in order.

    Tokens are counted with ``counter.count_history``, the count the prompt budget charges for this history (its H
    term), so memory's limit and the prompt's budget agree on what the same messages cost.
    """
    keep = list(active)
    evicted: list[Turn] = []
    if len(keep) > budget.active_turns:
        # Evict down to one below the limit so the summary is rewritten every other turn, not every turn.
        cut = len(keep) - max(1, budget.active_turns - 1)
        evicted, keep = keep[:cut], keep[cut:]
    recall = sorted(recalled, key=lambda r: r.score, reverse=True)
    dropped: list[Recalled] = []
    truncated = False
    while True:
        messages = build_messages(summary, recall, keep)
        tokens = counter.count_history(messages)
        if tokens < budget.threshold:
            break
        if len(keep) > 1:
            evicted.append(keep.pop(0))
        elif recall:
            dropped.append(recall.pop())
        elif keep:
            evicted.append(keep.pop(0))
        elif summary and not truncated:
            overhead = counter.count_history(build_messages("x", [], []))
            summary = _truncate(summary, counter, max(0, budget.threshold - overhead - 1))
            truncated = True
        else:
            break
    return MemoryContext(messages, tokens, keep, recall, evicted, dropped, truncated)
