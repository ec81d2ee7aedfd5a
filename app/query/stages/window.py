"""Sentence windows as a stage: a chunk indexed as one sentence is handed on as its surrounding window.

Runs after ranking (rerank scores what the index matched: the sentence) and before screening and selection, so
that what is screened, measured against the budget, positioned and read by the model is the window. Hits of
other chunkers carry no window and pass unchanged, so the stage is a no-op on their collections.

Two windows of one document that overlap (neighbouring sentences both matched) become one: the union of the two
spans, at the better hit's place and score, so the evidence holds no text twice and the budget is not spent on
copies. The union is exact, built from the two windows' texts and character offsets.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ingest.chunkers.sentence_window import WINDOW_END, WINDOW_FIELD, WINDOW_START
from retrieval.types import Hit, QueryState


def _span(hit: Hit) -> tuple[int, int] | None:
    start, end = hit.chunk.metadata.get(WINDOW_START), hit.chunk.metadata.get(WINDOW_END)
    return (start, end) if isinstance(start, int) and isinstance(end, int) else None


def _merged_text(kept: Hit, other: Hit) -> tuple[str, int, int]:
    """The text and span of the union of two overlapping windows of one document."""
    (s1, e1), (s2, e2) = _span(kept), _span(other)  # type: ignore[misc]
    t1, t2 = str(kept.chunk.text), str(other.chunk.text)
    if s2 < s1:
        (s1, e1, t1), (s2, e2, t2) = (s2, e2, t2), (s1, e1, t1)
    text = t1 if e2 <= e1 else t1 + t2[e1 - s2 :]
    return text, s1, max(e1, e2)


class ExpandWindows:
    """Writes ``candidates["windowed"]``: ``source`` with each sentence-window chunk's text replaced by its window,
    overlapping windows of one document merged."""

    name = "window"
    writes: tuple[str, ...] = ("windowed",)

    def __init__(self, source: str) -> None:
        self.source = source
        self.reads: tuple[str, ...] = (source,)

    def __call__(self, state: QueryState) -> QueryState:
        hits = state.read(self.source, by=self.name)
        with state.traced(self.name, items_in=len(hits)) as entry:
            out: list[Hit] = []
            merged: dict[str, list[str]] = {}
            expanded = 0
            for hit in hits:
                window, span = hit.chunk.metadata.get(WINDOW_FIELD), _span(hit)
                if not isinstance(window, str) or span is None:
                    out.append(hit)
                    continue
                expanded += 1
                wide = Hit(replace(hit.chunk, text=window), hit.score, hit.stage, hit.vector)
                into = self._overlapping(out, wide)
                if into is None:
                    out.append(wide)
                    continue
                text, start, end = _merged_text(out[into], wide)
                metadata: dict[str, Any] = {**out[into].chunk.metadata, WINDOW_START: start, WINDOW_END: end}
                out[into] = replace(out[into], chunk=replace(out[into].chunk, text=text, metadata=metadata))
                merged.setdefault(out[into].chunk.id, []).append(hit.chunk.id)
            state.candidates["windowed"] = out
            entry.items_out = len(out)
            entry.details.update(expanded=expanded, merged=merged)
        return state

    @staticmethod
    def _overlapping(kept: list[Hit], hit: Hit) -> int | None:
        """The position of a kept window of the same document that overlaps or touches ``hit``'s, if any."""
        span = _span(hit)
        assert span is not None
        for position, other in enumerate(kept):
            other_span = _span(other)
            same_document = other.chunk.doc_id == hit.chunk.doc_id and other_span is not None
            if same_document and span[0] <= other_span[1] and other_span[0] <= span[1]:  # type: ignore[index]
                return position
        return None
