"""Prompt-injection screening as a stage: retrieved chunks lose their instruction-like sentences and rank lower.

Runs after de-duplication (and reranking) and before selection, so that the text selection measures, positions
and the model reads is the screened text, and a flagged chunk competes for a place with a lower score.
"""

from __future__ import annotations

from dataclasses import replace

from app.context.injection import screen
from retrieval.types import Hit, QueryState

DOWN_WEIGHT = 0.8
"""Score factor of a flagged chunk: it keeps its facts but yields its place to an equally relevant clean chunk."""


class ScreenInjections:
    """Writes ``candidates["screened"]``: ``source`` with instructions removed from flagged chunks, re-ranked."""

    name = "screen"
    writes: tuple[str, ...] = ("screened",)

    def __init__(self, source: str = "deduplicated") -> None:
        self.source = source
        self.reads: tuple[str, ...] = (source,)

    def __call__(self, state: QueryState) -> QueryState:
        hits = state.read(self.source, by=self.name)
        with state.traced(self.name, items_in=len(hits)) as entry:
            screened: list[Hit] = []
            flagged: dict[str, list[str]] = {}
            for hit in hits:
                result = screen(hit.chunk.text)
                if not result.flagged:
                    screened.append(hit)
                    continue
                flagged[hit.chunk.id] = list(result.rules)
                metadata = {**hit.chunk.metadata, "injection_flags": list(result.rules)}
                chunk = replace(hit.chunk, text=result.text, metadata=metadata)
                screened.append(Hit(chunk, hit.score * DOWN_WEIGHT, hit.stage, hit.vector))
            screened.sort(key=lambda hit: hit.score, reverse=True)
            state.candidates["screened"] = screened
            entry.items_out = len(screened)
            entry.details.update(flagged=flagged)
        return state
