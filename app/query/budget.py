"""The token budget: B ≈ S + T + H + R + U, counted with the generator's tokenizer.

The prompt budget B is ``context_budget_tokens`` less the answer's reserve (``max_answer_tokens``). System text (S),
tool schemas (T), history (H) and the user's question (U) are fixed costs and are filled first; retrieved evidence
(R) gets what is left, least relevant evidence being dropped or trimmed first. When even the fixed costs do not fit,
the oldest history goes first; a question that cannot fit on its own is a ``BudgetExceededError``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from app.token_counter import ChatTemplateTokenCounter
from retrieval.protocols import Message


class BudgetExceededError(ValueError):
    """The question (with the system text) does not fit the prompt budget; the message says by how much."""


@dataclass
class TokenBudget:
    """Every term of the budget, as recorded in the trace (the UI's budget bar reads it)."""

    B: int
    S: int
    T: int
    H: int
    R: int
    U: int
    reserve: int
    used: int = 0
    history_dropped: int = 0

    @property
    def evidence_allowance(self) -> int:
        """Tokens left for evidence once the fixed terms are paid."""
        return max(self.B - self.S - self.T - self.H - self.U, 0)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class BudgetPlanner:
    """Computes the fixed terms of the budget for one request and how many tokens evidence may take."""

    def __init__(self, counter: ChatTemplateTokenCounter, total_tokens: int, reserve_tokens: int) -> None:
        if reserve_tokens < 0 or total_tokens <= reserve_tokens:
            raise ValueError(
                f"total_tokens ({total_tokens}) must exceed reserve_tokens ({reserve_tokens}), and the reserve be >= 0"
            )
        self.counter, self.total, self.reserve = counter, total_tokens, reserve_tokens

    @property
    def prompt_budget(self) -> int:
        return self.total - self.reserve

    def plan(
        self,
        system: str,
        history: list[Message],
        user_without_evidence: str,
        tools: list[dict[str, Any]] | None = None,
    ) -> tuple[TokenBudget, list[Message]]:
        """Fixed terms for this request, and the history that fits (oldest messages dropped first)."""
        b = self.prompt_budget
        system_message = {"role": "system", "content": system}
        s = self.counter.count_messages([system_message])
        t = self.counter.count(json.dumps(tools, separators=(",", ":"))) if tools else 0
        kept = list(history)
        while True:
            with_history = self.counter.count_messages([system_message, *kept])
            user_message = {"role": "user", "content": user_without_evidence}
            full = self.counter.count_messages([system_message, *kept, user_message], generation_prompt=True)
            h, u = with_history - s, full - with_history
            if s + t + h + u <= b or not kept:
                break
            kept = kept[1:]
        if s + t + h + u > b:
            raise BudgetExceededError(
                f"the question takes {u:,} tokens and the system text {s + t:,}, over the prompt budget of {b:,} "
                f"tokens (context_budget_tokens {self.total:,} less {self.reserve:,} reserved for the answer): "
                "shorten the question or raise RAGLINE_CONTEXT_BUDGET_TOKENS"
            )
        budget = TokenBudget(
            B=b, S=s, T=t, H=h, R=0, U=u, reserve=self.reserve, history_dropped=len(history) - len(kept)
        )
        return budget, kept
