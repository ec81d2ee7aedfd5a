"""Fusion of ranked lists from different searchers into one ranking.

Two modes, one class each, chosen by name through ``make_fusion``:
- ``rrf``: reciprocal rank fusion, Σ 1/(k + rank); needs no score calibration between BM25 and cosine.
- ``convex``: α·norm(dense) + (1-α)·norm(bm25) with min-max normalised scores per list; uses the score margins RRF
  throws away, at the price of a weight α that must be tuned (``ragline eval tune-fusion``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from retrieval.types import Hit


class Fusion(Protocol):
    name: str

    def fuse(self, ranked_lists: Mapping[str, Sequence[Hit]]) -> list[Hit]: ...

    def describe(self) -> dict[str, object]: ...


def _first_seen(ranked_lists: Mapping[str, Sequence[Hit]]) -> dict[str, Hit]:
    first: dict[str, Hit] = {}
    for hits in ranked_lists.values():
        for hit in hits:
            first.setdefault(hit.chunk.id, hit)
    return first


def _ranked(scores: dict[str, float], first: dict[str, Hit]) -> list[Hit]:
    order = sorted(scores, key=lambda chunk_id: scores[chunk_id], reverse=True)
    return [Hit(first[chunk_id].chunk, scores[chunk_id], "fused") for chunk_id in order]


class ReciprocalRankFusion:
    """score(d) = Σ_lists 1 / (k + rank(d)), ranks from 1; ties keep first-seen order."""

    name = "rrf"

    def __init__(self, k: int = 60) -> None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.k = k

    def fuse(self, ranked_lists: Mapping[str, Sequence[Hit]]) -> list[Hit]:
        scores: dict[str, float] = {}
        for hits in ranked_lists.values():
            for rank, hit in enumerate(hits, start=1):
                scores[hit.chunk.id] = scores.get(hit.chunk.id, 0.0) + 1.0 / (self.k + rank)
        return _ranked(scores, _first_seen(ranked_lists))

    def describe(self) -> dict[str, object]:
        return {"method": self.name, "k": self.k}


def min_max(hits: Sequence[Hit]) -> dict[str, float]:
    """Scores mapped to [0, 1] within one list; a list of equal scores maps to 1 (all equally good)."""
    if not hits:
        return {}
    scores = [h.score for h in hits]
    low, high = min(scores), max(scores)
    span = high - low
    return {h.chunk.id: (h.score - low) / span if span > 0 else 1.0 for h in hits}


class ConvexFusion:
    """α·dense + (1-α)·bm25 over min-max normalised scores; a document missing from a list scores 0 there.

    Ties keep first-seen order (the dense list's, then BM25's). Ties are common, not rare: each list's last hit
    normalises to 0, and a hit found by one list only scores 0 in the other. Iterating a set of chunk ids instead
    would break them by string hash, which Python randomises per process, so two replicas (or two runs of an
    evaluation) would rank one query differently."""

    name = "convex"

    def __init__(self, alpha: float = 0.5, dense: str = "dense", lexical: str = "bm25") -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha, self.dense, self.lexical = alpha, dense, lexical

    def fuse(self, ranked_lists: Mapping[str, Sequence[Hit]]) -> list[Hit]:
        unknown = set(ranked_lists) - {self.dense, self.lexical}
        if unknown:
            raise ValueError(f"convex fusion combines {self.dense!r} and {self.lexical!r}, got also {sorted(unknown)}")
        dense = min_max(ranked_lists.get(self.dense, []))
        lexical = min_max(ranked_lists.get(self.lexical, []))
        first = _first_seen({name: ranked_lists.get(name, []) for name in (self.dense, self.lexical)})
        scores = {
            chunk_id: self.alpha * dense.get(chunk_id, 0.0) + (1 - self.alpha) * lexical.get(chunk_id, 0.0)
            for chunk_id in first
        }
        return _ranked(scores, first)

    def describe(self) -> dict[str, object]:
        return {"method": self.name, "alpha": self.alpha}


def make_fusion(method: str, *, rrf_k: int = 60, alpha: float = 0.5) -> Fusion:
    """The fusion named by configuration (``rrf`` or ``convex``)."""
    if method == "rrf":
        return ReciprocalRankFusion(rrf_k)
    if method == "convex":
        return ConvexFusion(alpha)
    raise ValueError(f"fusion method must be 'rrf' or 'convex', got {method!r}")
