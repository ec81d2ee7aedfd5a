"""What the query tests share: fused hits of a known size, so budgets and gates can be checked exactly."""

from __future__ import annotations

from retrieval.types import Chunk, Hit


def make_hits(n: int, words: int = 120) -> list[Hit]:
    """``n`` fused hits of about ``words`` words each, scores falling from 1.0 by 0.01 a rank."""
    return [
        Hit(
            Chunk(id=f"c{i}", doc_id=f"doc{i}.md", text=" ".join(f"refund{i} window" for _ in range(words // 2))),
            1.0 - i / 100,
            "fused",
        )
        for i in range(n)
    ]
