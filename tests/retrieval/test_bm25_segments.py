"""Segmented BM25 gives the scores of a full bm25s build over the same live chunks, after adds and deletes.

The reference is ``BM25Index.build`` (bm25s, the index ragline served before segments) rebuilt from scratch on
the live chunks after every step; the comparison is exact (float32 equality), for every method of ``METHODS``.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from ingest.loaders import discover, load_document
from ingest.samples import sample_corpus_dir
from retrieval.bm25 import METHODS, BM25Config, BM25Index
from retrieval.bm25_segments import MERGE_RATIO, Row, SegmentedBM25
from retrieval.tokenize import TokenizerConfig

QUERIES = [
    "refund window for EU customers",
    "ERR-4012 gateway token expired",
    "webhook signature header X-NW-Signature",
    "data retention period for invoices",
    "single sign-on SAML setup",
    "rate limit POST /v2/invoices refund refund",
    "the of and",
    "zzzz-not-a-term",
]


@pytest.fixture(scope="module")
def documents() -> dict[str, list[str]]:
    """The sample corpus as documents of paragraph chunks (some documents share paragraphs' words heavily)."""
    root = sample_corpus_dir()
    out = {}
    for path in discover(root):
        paragraphs = [p.strip() for p in load_document(path, root).text.split("\n\n") if p.strip()]
        out[path.name] = paragraphs
    return out


def _rows(doc_id: str, texts: list[str]) -> list[Row]:
    return [Row(f"{doc_id}#{i}", doc_id, text) for i, text in enumerate(texts)]


def _assert_same_as_full_build(index: SegmentedBM25, live: dict[str, list[str]], config: BM25Config) -> None:
    ids = [f"{d}#{i}" for d in sorted(live) for i in range(len(live[d]))]
    texts = [t for d in sorted(live) for t in live[d]]
    full = BM25Index.build(ids, texts, config)
    assert index.n_docs == len(ids)
    assert sorted(index.live_ids) == sorted(ids)
    for query in QUERIES:
        expected = full.search(query, k=len(ids))
        got = index.search(query, k=len(ids))
        assert dict(got) == dict(expected), query  # exact: same float32 score for every chunk
        top = index.search(query, k=10)
        # same top-10 scores in the same order; a tie at the cut-off may pick either chunk, with the same score
        assert [score for _, score in top] == [score for _, score in expected[:10]], query
        assert all(dict(expected)[chunk_id] == score for chunk_id, score in top), query


@pytest.mark.parametrize("method", METHODS)
def test_scores_equal_a_full_rebuild_after_adds_and_deletes(documents: dict[str, list[str]], method: str) -> None:
    config = BM25Config(method=method, tokenizer=TokenizerConfig(stemmer="english"))
    rng = random.Random(7)
    names = sorted(documents)
    index, live = SegmentedBM25.empty(config), {}
    for _ in range(12):
        added = rng.sample(names, 3)
        removed = set(rng.sample(sorted(live), min(2, len(live)))) | (set(added) & live.keys())
        for doc_id in removed:
            del live[doc_id]
        # a rewrite: a re-added document gets other text (its paragraphs reversed, one dropped)
        new = {
            d: documents[d][::-1][: max(1, len(documents[d]) - 1)] if rng.random() < 0.5 else documents[d]
            for d in added
        }
        live.update(new)
        index = index.apply(removed=removed, rows=[r for d in sorted(new) for r in _rows(d, new[d])])
        _assert_same_as_full_build(index, live, config)
    assert sum(s.size for s in index.segments) >= index.n_docs


def test_single_document_adds_keep_few_segments() -> None:
    index = SegmentedBM25.empty()
    for n in range(300):
        index = index.apply(rows=[Row(f"c{n}", f"d{n}", f"refund policy number {n} for region r{n % 7}")])
    sizes = [s.size for s in index.segments]
    assert sum(sizes) == index.n_docs == 300
    assert all(newer * MERGE_RATIO < older for older, newer in itertools.pairwise(sizes)), sizes
    assert len(sizes) <= 1 + int(np.log(300) / np.log(MERGE_RATIO)) + 1


def test_deleted_rows_are_never_returned_and_mostly_dead_segments_are_rewritten() -> None:
    rows = [Row(f"c{n}", f"d{n}", f"refund policy {n}") for n in range(10)]
    index = SegmentedBM25.build(rows)
    index = index.apply(removed=[f"d{n}" for n in range(4)])
    assert {chunk_id for chunk_id, _ in index.search("refund", k=10)} == {f"c{n}" for n in range(4, 10)}
    assert index.segments[0].size == 10  # 40% dead: kept with tombstones
    index = index.apply(removed=["d4", "d5"])
    assert [s.size for s in index.segments] == [4] and index.n_docs == 4  # 60% dead: rewritten
    assert index.apply(removed=[f"d{n}" for n in range(6, 10)]).search("refund", k=10) == []


def test_mask_restricts_rows_and_adding_a_live_document_again_is_refused() -> None:
    index = SegmentedBM25.build(_rows("a", ["refund policy EU"]) + _rows("b", ["refund policy US", "sso setup"]))
    mask = np.array([chunk_id == "b#0" for chunk_id in index.ids], dtype=np.float32)
    assert [chunk_id for chunk_id, _ in index.search("refund policy", k=3, mask=mask)] == ["b#0"]
    with pytest.raises(ValueError, match="already indexed"):
        index.apply(rows=_rows("a", ["again"]))
