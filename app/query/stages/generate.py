"""Generation as a stage, whole or streamed: the generator answers from the assembled prompt.

Both paths settle the reply the same way (``app.query.outcome``: an empty reply or one cut at the token limit made
safe to show) and record the same trace entry, so ``Pipeline.run`` and ``Pipeline.stream`` differ only in how the
text reaches the caller.
"""

from __future__ import annotations

from collections.abc import Iterator

from app.llm import OpenAICompatibleGenerator
from app.query.outcome import settle
from app.token_counter import ChatTemplateTokenCounter
from retrieval.types import QueryState


class Generate:
    """Writes ``state.answer`` from ``state.messages``; skipped (and traced as such) when the state abstained."""

    name = "generate"
    reads: tuple[str, ...] = ("messages",)
    writes: tuple[str, ...] = ("answer",)

    def __init__(
        self,
        generator: OpenAICompatibleGenerator,
        counter: ChatTemplateTokenCounter,
        max_tokens: int,
        temperature: float,
    ) -> None:
        if max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        self.generator, self.counter, self.max_tokens, self.temperature = generator, counter, max_tokens, temperature

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name, items_in=len(state.context)) as entry:
            if state.abstained:
                entry.details.update(skipped="abstained")
                return state
            completion = self.generator.chat(state.messages, max_tokens=self.max_tokens, temperature=self.temperature)
            state.answer, notes = settle(completion.text, completion.finish_reason)
            entry.items_out = 1
            entry.details.update(
                model=self.generator.model,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                finish_reason=completion.finish_reason,
                **notes,
            )
        return state

    def stream(self, state: QueryState) -> Iterator[str]:
        """Yield the answer's text parts as they arrive, then set ``state.answer`` to the settled whole.

        What is yielded always adds up to something to show: an abstention yields its answer, and an empty stream
        yields the empty-answer statement once it has ended.
        """
        if state.abstained:
            yield state.answer
            self(state)
            return
        parts: list[str] = []
        with state.traced(self.name, items_in=len(state.context)) as entry:
            deltas = self.generator.stream(state.messages, max_tokens=self.max_tokens, temperature=self.temperature)
            for delta in deltas:
                parts.append(delta)
                yield delta
            raw = "".join(parts)
            # the stream carries no finish reason: an answer that used every allowed token was cut
            at_limit = bool(raw) and self.counter.count(raw) >= self.max_tokens
            state.answer, notes = settle(raw, "length" if at_limit else "stop")
            entry.items_out = 1
            entry.details.update(model=self.generator.model, streamed=True, **notes)
        if notes.get("empty"):
            yield state.answer
