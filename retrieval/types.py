"""The values that flow through the read path: chunks, scored hits, and the query state with its trace."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a document. ``level``/``parent_id`` place RAPTOR summaries in their tree."""

    id: str
    doc_id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    level: int = 0
    parent_id: str | None = None


@dataclass
class Hit:
    """A chunk with the score one stage gave it; ``stage`` names that stage (bm25, dense, fused, ...)."""

    chunk: Chunk
    score: float
    stage: str
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The chunk's stored embedding when the search returned it (dense), so dedup need not fetch it again."""


class Searcher(Protocol):
    name: str

    def search(self, query: str, k: int, where: Mapping[str, Any] | None = None) -> list[Hit]: ...


@dataclass
class TraceEntry:
    """What one stage did: counts, top scores, tokens and time. Feeds the UI inspector, eval and metrics."""

    stage: str
    items_in: int = 0
    items_out: int = 0
    ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "items_in": self.items_in,
            "items_out": self.items_out,
            "ms": round(self.ms, 2),
            **self.details,
        }


@dataclass
class QueryState:
    """Everything the query stages read and write; each stage takes it and returns it."""

    question: str
    collection: str
    filters: Mapping[str, Any] | None = None
    search_query: str | None = None
    """What retrieval searches for; a follow-up rewritten into a standalone question. ``None``: the question."""
    history: list[dict[str, str]] = field(default_factory=list)
    """Chat messages from memory (session summary, recalled facts, recent turns): the H term of the budget."""
    candidates: dict[str, list[Hit]] = field(default_factory=dict)
    context: list[Hit] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    answer: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    abstained: bool = False
    """The evidence was too weak to answer: ``answer`` says so and generation is skipped."""
    trace: list[TraceEntry] = field(default_factory=list)

    @contextmanager
    def traced(self, stage: str, items_in: int = 0) -> Iterator[TraceEntry]:
        """Time a stage and append its trace entry, even when the stage fails."""
        entry = TraceEntry(stage=stage, items_in=items_in)
        started = time.perf_counter()
        try:
            yield entry
        finally:
            entry.ms = (time.perf_counter() - started) * 1000
            self.trace.append(entry)

    @property
    def query(self) -> str:
        """The text the searchers use."""
        return self.search_query or self.question


class Stage(Protocol):
    name: str

    def __call__(self, state: QueryState) -> QueryState: ...
