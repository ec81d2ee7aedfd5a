"""Prompt assembly under the token budget as a stage; the layout is ``app.query.prompt``."""

from __future__ import annotations

from app.query.budget import BudgetExceededError, BudgetPlanner, TokenBudget
from app.query.prompt import MIN_TRIM_TOKENS, SYSTEM_PROMPT, SourceCost, build_messages, user_message
from app.token_counter import ChatTemplateTokenCounter
from retrieval.types import Hit, QueryState


class AssemblePrompt:
    """Lays out the prompt within budget B and records every budget term in the trace.

    Fixed terms (system, tools, history, question) are paid first; evidence gets the rest. When the positioned and
    compressed evidence still exceeds it, the least relevant source is trimmed or dropped first, and the count is
    checked once more on the final messages as the chat template renders them. ``candidates["compressed"]`` and
    ``candidates["selected"]`` are used when present (compression may be off or skip; selection may be absent in a
    hand-built pipeline), so they are not declared inputs.
    """

    name = "assemble"
    reads: tuple[str, ...] = ("context",)
    writes: tuple[str, ...] = ("context", "messages")

    def __init__(self, counter: ChatTemplateTokenCounter, planner: BudgetPlanner, system: str = SYSTEM_PROMPT) -> None:
        self.counter, self.planner, self.system = counter, planner, system
        self.cost = SourceCost(counter)

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name, items_in=len(state.context)) as entry:
            budget, history = self.planner.plan(self.system, state.history, user_message(state.question, []))
            texts = {h.chunk.id: h.chunk.text for h in state.candidates.get("compressed", [])}
            ranking = {h.chunk.id: rank for rank, h in enumerate(state.candidates.get("selected", state.context))}
            context, room = list(state.context), budget.evidence_allowance
            dropped: list[str] = []
            for _ in range(4):
                context, dropped_now = self._fit(context, texts, ranking, room)
                dropped += dropped_now
                state.messages = build_messages(state.question, context, history, texts)
                used = self.counter.count_messages(state.messages, generation_prompt=True)
                if used <= budget.B or not context:
                    break
                room -= used - budget.B
            state.context = context
            budget.R, budget.used = used - budget.S - budget.T - budget.H - budget.U, used
            entry.items_out = len(context)
            entry.details.update(
                budget=budget.as_dict(),
                order=[h.chunk.id for h in context],
                dropped=dropped,
                prompt_chars=sum(len(m["content"]) for m in state.messages),
            )
            self._check(budget)
        return state

    def _fit(
        self, context: list[Hit], texts: dict[str, str], ranking: dict[str, int], room: int
    ) -> tuple[list[Hit], list[str]]:
        """Drop (or trim) the least relevant sources until the evidence fits ``room`` tokens."""
        context, dropped = list(context), []
        while context:
            costs = [self.cost(h, texts.get(h.chunk.id)) for h in context]
            excess = sum(costs) - room
            if excess <= 0:
                break
            worst = max(range(len(context)), key=lambda i: ranking.get(context[i].chunk.id, len(ranking)))
            keep = costs[worst] - excess
            hit = context[worst]
            if keep >= MIN_TRIM_TOKENS and hit.chunk.id not in texts:
                context[worst] = self.cost.trim(hit, keep)
            else:
                dropped.append(hit.chunk.id)
                del context[worst]
        return context, dropped

    @staticmethod
    def _check(budget: TokenBudget) -> None:
        if budget.used > budget.B:
            raise BudgetExceededError(
                f"the prompt takes {budget.used:,} tokens even without evidence, over its budget of {budget.B:,}: "
                f"{budget.as_dict()}; shorten the question or raise RAGLINE_CONTEXT_BUDGET_TOKENS"
            )
