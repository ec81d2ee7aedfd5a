"""The query pipeline: an ordered list of stages built from settings, then generation and citation check."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.context.factory import context_stages
from app.context.hyde import HypotheticalDocument
from app.context.outcome import settle
from app.llm import OpenAICompatibleGenerator
from app.prompting import CheckCitations
from app.resources import Resources
from app.settings import Settings
from app.token_counter import ChatTemplateTokenCounter
from retrieval import filters as filter_lang
from retrieval.fusion import make_fusion
from retrieval.rerank import Rerank
from retrieval.stages import Deduplicate, Fuse, HybridSearch
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


class Pipeline:
    """Retrieval stages → prompt → generation → citations; the same object serves CLI, API and UI.

    ``options`` on a call override settings for that request only (the UI's pipeline switches, an eval config);
    they are validated like settings, so a typo is an error and not a silently ignored switch.
    """

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.retrieval, self.generate, self.check_citations = self.build(resources.settings)

    def build(self, settings: Settings) -> tuple[list[Stage], Generate, CheckCitations]:
        """The stages for ``settings``: cheap objects over the shared, already-loaded resources."""
        index = self.resources.index
        retrieval: list[Stage] = [
            *([HypotheticalDocument(self.resources.generator)] if settings.hyde else []),
            HybridSearch(index, settings.bm25_top_k, settings.dense_top_k),
            Fuse(make_fusion(settings.fusion, rrf_k=settings.rrf_k, alpha=settings.fusion_alpha)),
            Deduplicate(index, settings.dedup_threshold),
            *self.rerank_stages(settings),
            *context_stages(self.resources, settings, source="reranked" if settings.reranker else "deduplicated"),
        ]
        generate = Generate(self.resources.generator, settings.max_answer_tokens, settings.temperature)
        return retrieval, generate, CheckCitations()

    def rerank_stages(self, settings: Settings) -> list[Stage]:
        """``Rerank`` when a reranker is configured; the model loads (and is checked) here, at build time."""
        reranker = self.resources.reranker_for(settings)
        return [] if reranker is None else [Rerank(reranker, settings.rerank_top_n, weight=settings.rerank_weight)]

    def settings_for(self, options: Mapping[str, Any] | None) -> Settings:
        """Settings with per-request ``options`` applied; unknown names and invalid values raise ``ValueError``."""
        settings = self.resources.settings
        if not options:
            return settings
        unknown = sorted(set(options) - set(type(settings).model_fields))
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(unknown)}")
        try:
            return type(settings).model_validate({**settings.model_dump(), **options})
        except ValidationError as error:
            raise ValueError(f"invalid option(s): {error}") from error

    def _stages(self, options: Mapping[str, Any] | None) -> tuple[list[Stage], Generate, CheckCitations]:
        if not options:
            return self.retrieval, self.generate, self.check_citations
        return self.build(self.settings_for(options))

    def _prepare(
        self,
        question: str,
        collection: str,
        filters: Mapping[str, Any] | None,
        retrieval: list[Stage],
        *,
        history: list[dict[str, str]] | None = None,
        search_query: str | None = None,
    ) -> QueryState:
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
        state = QueryState(
            question=question,
            collection=collection,
            filters=where,
            search_query=search_query,
            history=list(history or []),
        )
        for stage in retrieval:
            state = stage(state)
        return state

    def run(
        self,
        question: str,
        collection: str,
        filters: Mapping[str, Any] | None = None,
        *,
        history: list[dict[str, str]] | None = None,
        search_query: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Answer:
        retrieval, generate, check_citations = self._stages(options)
        state = self._prepare(question, collection, filters, retrieval, history=history, search_query=search_query)
        return self._answer(check_citations(generate(state)))

    def stream(
        self,
        question: str,
        collection: str,
        filters: Mapping[str, Any] | None = None,
        *,
        history: list[dict[str, str]] | None = None,
        search_query: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[str | Answer]:
        """Yield answer text deltas, then the final ``Answer`` (citations checked on the full text)."""
        retrieval, generate, check_citations = self._stages(options)
        state = self._prepare(question, collection, filters, retrieval, history=history, search_query=search_query)
        if state.abstained:
            yield state.answer
            yield self._answer(check_citations(generate(state)))
            return
        parts: list[str] = []
        with state.traced(generate.name, items_in=len(state.context)) as entry:
            for delta in self.resources.generator.stream(
                state.messages, max_tokens=generate.max_tokens, temperature=generate.temperature
            ):
                parts.append(delta)
                yield delta
            raw = "".join(parts)
            # the stream carries no finish reason: an answer that used every allowed token was cut
            at_limit = (
                bool(raw) and ChatTemplateTokenCounter(self.resources.generator_dir).count(raw) >= generate.max_tokens
            )
            state.answer, notes = settle(raw, "length" if at_limit else "stop")
            entry.items_out = 1
            entry.details.update(model=self.resources.generator.model, streamed=True, **notes)
        if notes.get("empty"):
            yield state.answer
        yield self._answer(check_citations(state))

    @staticmethod
    def _answer(state: QueryState) -> Answer:
        trace = {
            "question": state.question,
            "collection": state.collection,
            "filters": dict(state.filters) if state.filters else None,
            "search_query": state.search_query,
            "stages": [entry.as_dict() for entry in state.trace],
            "invalid_citations": state.invalid_citations,
        }
        return Answer(text=state.answer, citations=state.citations, trace=trace)
