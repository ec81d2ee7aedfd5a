import numpy as np

from retrieval.dedup import Deduplicator
from retrieval.types import Chunk, Hit


def _hit(chunk_id: str, text: str) -> Hit:
    return Hit(Chunk(id=chunk_id, doc_id=chunk_id, text=text), 1.0, "fused")


def test_exact_duplicates_keep_the_better_ranked_copy() -> None:
    hits = [_hit("a", "Refunds within 30 days."), _hit("b", "refunds   WITHIN 30 days."), _hit("c", "SSO setup")]
    kept, dropped = Deduplicator(None)(hits)
    assert [h.chunk.id for h in kept] == ["a", "c"]
    assert [(d.dropped, d.kept, d.kind) for d in dropped] == [("b", "a", "exact")]


def test_near_duplicates_by_cosine_threshold() -> None:
    vectors = {"a": [1.0, 0.0], "b": [0.99, 0.141], "c": [0.0, 1.0]}
    lookup = lambda hits: np.array([vectors[h.chunk.id] for h in hits])  # noqa: E731
    hits = [_hit("a", "x"), _hit("b", "y"), _hit("c", "z")]
    kept, dropped = Deduplicator(lookup, threshold=0.95)(hits)
    assert [h.chunk.id for h in kept] == ["a", "c"]
    assert dropped[0].kind == "near" and dropped[0].kept == "a" and dropped[0].similarity > 0.95
    kept, dropped = Deduplicator(lookup, threshold=0.999)(hits)
    assert len(kept) == 3 and dropped == []
