"""The query pipeline: the stages built from settings (``app.query.build``) run over one query, whole or streamed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.query.build import build_stages
from app.query.grounding import UNGROUNDED_WARNING
from app.query.wiring import StagePlan
from app.resources import Resources
from app.settings import Settings
from retrieval import filters as filter_lang
from retrieval.types import Chunk, QueryState, Stage


@dataclass(frozen=True)
class Answer:
    """What one query returns to CLI, API and UI: the answer text, its checked citations and the full trace."""

    text: str
    citations: list[dict[str, Any]]
    trace: dict[str, Any]
    grounded: bool = True
    """False when the answer states something and no sentence is supported by a cited source."""
    unsupported_sentences: int = 0
    evidence: list[Chunk] = field(default_factory=list)
    """The sources as the model read them, in prompt order: sentence windows expanded, trims applied, before any
    compression. Evaluation scores these, not the indexed chunks, which for a sentence-window collection are single
    sentences."""

    @property
    def warning(self) -> str | None:
        """What CLI, API and UI show next to an answer that is not grounded."""
        return None if self.grounded else UNGROUNDED_WARNING

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "citations": self.citations,
            "grounded": self.grounded,
            "unsupported_sentences": self.unsupported_sentences,
            "warning": self.warning,
            "trace": self.trace,
        }


class Pipeline:
    """Retrieval stages → prompt → generation → citations; the same object serves CLI, API and UI.

    ``options`` on a call override settings for that request only (the UI's pipeline switches, an eval config);
    they are validated like settings, so a typo is an error and not a silently ignored switch.
    """

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.stages = build_stages(resources, resources.settings)

    @property
    def retrieval(self) -> tuple[Stage, ...]:
        """The stages before generation under the default settings (the UI's inspector lists them)."""
        return self.stages.retrieval

    def settings_for(self, options: Mapping[str, Any] | None) -> Settings:
        """Settings with per-request ``options`` applied; unknown names and invalid values raise ``ValueError``."""
        settings = self.resources.settings
        if not options:
            return settings
        unknown = sorted(set(options) - set(type(settings).model_fields))
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(unknown)}")
        try:
            return settings.with_options(options)
        except ValidationError as error:
            raise ValueError(f"invalid option(s): {error}") from error

    def _stages(self, options: Mapping[str, Any] | None) -> StagePlan:
        if not options:
            return self.stages
        return build_stages(self.resources, self.settings_for(options))

    def _prepare(
        self,
        question: str,
        collection: str,
        filters: Mapping[str, Any] | None,
        retrieval: tuple[Stage, ...],
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
        stages = self._stages(options)
        state = self._prepare(
            question, collection, filters, stages.retrieval, history=history, search_query=search_query
        )
        return self._answer(stages.check_citations(stages.generate(state)))

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
        stages = self._stages(options)
        state = self._prepare(
            question, collection, filters, stages.retrieval, history=history, search_query=search_query
        )
        yield from stages.generate.stream(state)
        yield self._answer(stages.check_citations(state))

    @staticmethod
    def _answer(state: QueryState) -> Answer:
        trace = {
            "question": state.question,
            "collection": state.collection,
            "filters": dict(state.filters) if state.filters else None,
            "search_query": state.search_query,
            "stages": [entry.as_dict() for entry in state.trace],
            "invalid_citations": state.invalid_citations,
            "grounded": state.grounded,
            "unsupported_sentences": state.unsupported_sentences,
        }
        return Answer(
            text=state.answer,
            citations=state.citations,
            trace=trace,
            grounded=state.grounded,
            unsupported_sentences=state.unsupported_sentences,
            evidence=[hit.chunk for hit in state.context],
        )
