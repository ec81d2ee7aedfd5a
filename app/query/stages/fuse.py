"""Fusion of the gathered candidate lists as a stage."""

from __future__ import annotations

from retrieval.fusion import Fusion
from retrieval.hybrid import fuse
from retrieval.types import QueryState


class Fuse:
    """Fuses the candidate lists named by ``sources`` into ``candidates["fused"]``."""

    name = "fusion"
    writes: tuple[str, ...] = ("fused",)

    def __init__(self, fusion: Fusion, sources: tuple[str, ...] = ("bm25", "dense")) -> None:
        if not sources:
            raise ValueError("sources must name at least one candidate list")
        self.fusion, self.sources = fusion, sources
        self.reads: tuple[str, ...] = sources

    def __call__(self, state: QueryState) -> QueryState:
        lists = {source: state.read(source, by=self.name) for source in self.sources}
        state.candidates["fused"] = fuse(self.fusion, lists, trace=state.trace)
        return state
