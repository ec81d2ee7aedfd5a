"""The query pipeline: an ordered list of stages built from settings, then generation and citation check."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from app.llm import OpenAICompatibleGenerator
from app.prompting import AssemblePrompt, CheckCitations
from app.resources import Resources
from retrieval import filters as filter_lang
from retrieval.fusion import make_fusion
from retrieval.stages import Deduplicate, Fuse, Search, SelectContext
from retrieval.types import QueryState, Stage


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[dict[str, Any]]
    trace: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"answer": self.text, "citations": self.citations, "trace": self.trace}


class Generate:
    name = "generate"

    def __init__(self, generator: OpenAICompatibleGenerator, max_tokens: int, temperature: float) -> None:
        self.generator, self.max_tokens, self.temperature = generator, max_tokens, temperature

    def __call__(self, state: QueryState) -> QueryState:
        with state.traced(self.name, items_in=len(state.context)) as entry:
            completion = self.generator.chat(state.messages, max_tokens=self.max_tokens, temperature=self.temperature)
            state.answer = completion.text.strip()
            entry.items_out = 1
            entry.details.update(
                model=self.generator.model,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                finish_reason=completion.finish_reason,
            )
        return state


class Pipeline:
    """Retrieval stages → prompt → generation → citations; the same object serves CLI, API and UI."""

    def __init__(self, resources: Resources) -> None:
        settings = resources.settings
        self.resources = resources
        index = resources.index
        self.retrieval: list[Stage] = [
            Search(index, "bm25", settings.bm25_top_k),
            Search(index, "dense", settings.dense_top_k),
            Fuse(make_fusion(settings.fusion, rrf_k=settings.rrf_k, alpha=settings.fusion_alpha)),
            Deduplicate(index, settings.dedup_threshold),
            SelectContext(settings.context_top_k),
            AssemblePrompt(),
        ]
        self.generate = Generate(resources.generator, settings.max_answer_tokens, settings.temperature)
        self.check_citations = CheckCitations()

    def _prepare(self, question: str, collection: str, filters: Mapping[str, Any] | None) -> QueryState:
        if not question.strip():
            raise ValueError("the question is empty")
        limit = self.resources.settings.max_question_chars
        if len(question) > limit:
            raise ValueError(
                f"the question is {len(question):,} characters; the limit is {limit:,} (RAGLINE_MAX_QUESTION_CHARS)"
            )
        index = self.resources.index
        index.require_collection(collection)
        where = filter_lang.validate(filters)
        index.check_filter(collection, where)
        state = QueryState(question=question, collection=collection, filters=where)
        for stage in self.retrieval:
            state = stage(state)
        return state

    def run(self, question: str, collection: str, filters: Mapping[str, Any] | None = None) -> Answer:
        state = self.check_citations(self.generate(self._prepare(question, collection, filters)))
        return self._answer(state)

    def stream(
        self, question: str, collection: str, filters: Mapping[str, Any] | None = None
    ) -> Iterator[str | Answer]:
        """Yield answer text deltas, then the final ``Answer`` (citations checked on the full text)."""
        state = self._prepare(question, collection, filters)
        parts: list[str] = []
        with state.traced(self.generate.name, items_in=len(state.context)) as entry:
            for delta in self.resources.generator.stream(
                state.messages, max_tokens=self.generate.max_tokens, temperature=self.generate.temperature
            ):
                parts.append(delta)
                yield delta
            entry.items_out = 1
            entry.details.update(model=self.resources.generator.model, streamed=True)
        state.answer = "".join(parts).strip()
        yield self._answer(self.check_citations(state))

    @staticmethod
    def _answer(state: QueryState) -> Answer:
        trace = {
            "question": state.question,
            "collection": state.collection,
            "filters": dict(state.filters) if state.filters else None,
            "stages": [entry.as_dict() for entry in state.trace],
            "invalid_citations": state.invalid_citations,
        }
        return Answer(text=state.answer, citations=state.citations, trace=trace)
