"""Evidence order in the prompt.

Models read the start and the end of a long context best and the middle worst ("lost in the middle", Liu et al.
2023), so ``edge`` puts the most relevant chunk first, the second most relevant last and the rest toward the middle
in decreasing relevance. ``relevance`` keeps rank order; ``document`` groups chunks by document (documents in order
of their best chunk) and keeps each document's chunks in reading order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from retrieval.types import Hit

T = TypeVar("T")
POSITIONINGS = ("edge", "relevance", "document")


def edge_order(ranked: Sequence[T]) -> list[T]:
    """Ranks 1, 3, 5, ... from the front and 2, 4, 6, ... from the back: the weakest land in the middle."""
    front = [item for i, item in enumerate(ranked) if i % 2 == 0]
    back = [item for i, item in enumerate(ranked) if i % 2 == 1]
    return front + back[::-1]


def document_order(ranked: Sequence[Hit]) -> list[Hit]:
    first_rank: dict[str, int] = {}
    for rank, hit in enumerate(ranked):
        first_rank.setdefault(hit.chunk.doc_id, rank)

    def key(item: tuple[int, Hit]) -> tuple[int, int, int]:
        rank, hit = item
        return first_rank[hit.chunk.doc_id], int(hit.chunk.metadata.get("chunk_index", 0)), rank

    return [hit for _, hit in sorted(enumerate(ranked), key=key)]


def make_positioner(name: str) -> Callable[[Sequence[Hit]], list[Hit]]:
    """The ordering function for a positioning name (``edge``, ``relevance`` or ``document``)."""
    orders: dict[str, Callable[[Sequence[Hit]], list[Hit]]] = {
        "edge": edge_order,
        "relevance": list,
        "document": document_order,
    }
    if name not in orders:
        raise ValueError(f"positioning must be one of {', '.join(POSITIONINGS)}, got {name!r}")
    return orders[name]
