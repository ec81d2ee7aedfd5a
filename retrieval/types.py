"""The values that flow through the read path: chunks, scored hits, and the query state with its trace."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
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


def top_scores(hits: list[Hit], n: int = 10) -> list[dict[str, object]]:
    """The head of a ranked list as a trace records it: chunk, document and score of the first ``n`` hits."""
    return [{"chunk_id": h.chunk.id, "doc_id": h.chunk.doc_id, "score": round(h.score, 6)} for h in hits[:n]]


@contextmanager
def traced(trace: list[TraceEntry], stage: str, items_in: int = 0) -> Iterator[TraceEntry]:
    """Time one step and append its trace entry to ``trace``, even when the step fails."""
    entry = TraceEntry(stage=stage, items_in=items_in)
    started = time.perf_counter()
    try:
        yield entry
    finally:
        entry.ms = (time.perf_counter() - started) * 1000
        trace.append(entry)


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
    grounded: bool = True
    """False when the answer states something and no sentence of it carries a valid citation."""
    unsupported_sentences: int = 0
    """Sentences of the answer that no cited source supports (a refusal counts none)."""
    trace: list[TraceEntry] = field(default_factory=list)

    def traced(self, stage: str, items_in: int = 0) -> AbstractContextManager[TraceEntry]:
        """Time a stage and append its trace entry, even when the stage fails."""
        return traced(self.trace, stage, items_in)

    def read(self, source: str, *, by: str) -> list[Hit]:
        """The candidate list ``source`` for stage ``by``; a list no stage wrote is a ``KeyError`` naming both.

        Strict on purpose: a misspelt source would otherwise read as an empty list and the answer would quietly
        lose its evidence. ``check_wiring`` catches the same mistake when a pipeline is built.
        """
        if source not in self.candidates:
            written = ", ".join(sorted(self.candidates)) or "none"
            raise KeyError(
                f"stage {by!r} reads candidates[{source!r}], which no earlier stage wrote (written: {written})"
            )
        return self.candidates[source]

    @property
    def query(self) -> str:
        """The text the searchers use."""
        return self.search_query or self.question


class Stage(Protocol):
    """One step of the query path. ``reads`` and ``writes`` name the candidate lists (``bm25``, ``fused``, ...) and
    state fields (``context``, ``messages``, ``answer``, ...) it needs and produces, so wiring is checked when a
    pipeline is built instead of failing, or silently reading nothing, on the first query."""

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]

    def __call__(self, state: QueryState) -> QueryState: ...
