"""Evidence order in the prompt.

Models read the start and the end of a long context best and the middle worst ("lost in the middle", Liu et al.
2023), so ``edge`` puts the most relevant chunk first, the second most relevant last and the rest toward the middle
in decreasing relevance. ``edge-last`` is its mirror image, the most relevant chunk last and the second first, for
models that weight the end of the prompt most. ``relevance`` (the default) keeps rank order; ``document`` groups
chunks by document (documents in order of their best chunk) and keeps each document's chunks in reading order.

Which order suits a model is measured, not assumed: ``ragline eval position`` compares them against the gold
passage in each input slot. The default generator (Qwen2.5-Coder-0.5B) reads the start best at 4 and 10 passages,
and a strong distractor moved to the end draws its answer, so plain relevance order beats ``edge`` for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from retrieval.types import Hit

T = TypeVar("T")
POSITIONINGS = ("edge", "edge-last", "relevance", "document")


def edge_order(ranked: Sequence[T]) -> list[T]:
    """Ranks 1, 3, 5, ... from the front and 2, 4, 6, ... from the back: the weakest land in the middle."""
    front = [item for i, item in enumerate(ranked) if i % 2 == 0]
    back = [item for i, item in enumerate(ranked) if i % 2 == 1]
    return front + back[::-1]


def edge_last_order(ranked: Sequence[T]) -> list[T]:
    """``edge_order`` mirrored: rank 1 at the very end, rank 2 at the very start, the weakest in the middle."""
    return edge_order(ranked)[::-1]


def document_order(ranked: Sequence[Hit]) -> list[Hit]:
    first_rank: dict[str, int] = {}
    for rank, hit in enumerate(ranked):
        first_rank.setdefault(hit.chunk.doc_id, rank)

    def key(item: tuple[int, Hit]) -> tuple[int, int, int]:
        rank, hit = item
        return first_rank[hit.chunk.doc_id], int(hit.chunk.metadata.get("chunk_index", 0)), rank

    return [hit for _, hit in sorted(enumerate(ranked), key=key)]


def make_positioner(name: str) -> Callable[[Sequence[Hit]], list[Hit]]:
    """The ordering function for a positioning name (one of ``POSITIONINGS``)."""
    orders: dict[str, Callable[[Sequence[Hit]], list[Hit]]] = {
        "edge": edge_order,
        "edge-last": edge_last_order,
        "relevance": list,
        "document": document_order,
    }
    if name not in orders:
        raise ValueError(f"positioning must be one of {', '.join(POSITIONINGS)}, got {name!r}")
    return orders[name]
