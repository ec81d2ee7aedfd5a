"""The documented corpus subset: every judged document kept, the rest a seeded sample, the same for every chunker."""

from __future__ import annotations

import pytest

from eval.corpus_subset import corpus_subset

QRELS = {"q1": {"d03": 1}, "q2": {"d07": 1, "d11": 1}}


def test_subset_keeps_every_judged_document_and_is_reproducible() -> None:
    ids = [f"d{i:02}" for i in range(20)]
    subset = corpus_subset(ids, QRELS, 8, seed=0)
    assert len(subset) == 8 and {"d03", "d07", "d11"} <= set(subset)
    assert subset == sorted(subset, key=ids.index), "corpus order is kept"
    assert corpus_subset(ids, QRELS, 8, seed=0) == subset
    assert corpus_subset(ids, QRELS, 8, seed=1) != subset
    assert corpus_subset(ids, QRELS, 50) == ids


def test_subset_rejects_sizes_that_drop_judged_documents() -> None:
    with pytest.raises(ValueError, match="cannot hold the 3 judged"):
        corpus_subset([f"d{i:02}" for i in range(20)], QRELS, 2)
    with pytest.raises(ValueError, match="not in the corpus"):
        corpus_subset(["d03", "d07"], QRELS, 5)
