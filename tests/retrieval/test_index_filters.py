"""Filters restrict both searches before scoring, dates included (real Chroma, real BM25, real embedder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import DocumentWrite, Index
from retrieval.types import Chunk

POLICIES = [
    ("eu-2022", "EU refund window is 14 days.", {"region": "EU", "effective_date": "2022-01-01"}),
    ("eu-2024", "EU refund window is 30 days.", {"region": "EU", "effective_date": "2024-03-01"}),
    ("us-2024", "US refund window is 14 days.", {"region": "US", "effective_date": "2024-01-15"}),
    ("uk-2024", "UK refund window is 21 days.", {"region": "UK", "effective_date": "2024-06-01"}),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder_dir: Path) -> Index:
    index = Index(tmp_path_factory.mktemp("idx"), SentenceTransformerEmbedder(embedder_dir))
    index.write(
        "p",
        [
            DocumentWrite(doc, doc, [Chunk(id=doc, doc_id=doc, text=text, metadata=meta)])
            for doc, text, meta in POLICIES
        ],
    )
    index.commit("p")
    return index


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"region": "EU"}, {"eu-2022", "eu-2024"}),
        ({"effective_date": {"$gte": "2024-01-01"}}, {"eu-2024", "us-2024", "uk-2024"}),
        (
            {"$and": [{"region": {"$in": ["EU", "UK"]}}, {"effective_date": {"$gt": "2024-02-01"}}]},
            {"eu-2024", "uk-2024"},
        ),
        ({"region": {"$ne": "EU"}}, {"us-2024", "uk-2024"}),
        ({"doc_id": "us-2024"}, {"us-2024"}),
    ],
)
def test_both_searches_return_only_matching_chunks(index: Index, where: dict, expected: set[str]) -> None:
    dense = {h.chunk.id for h in index.search_dense("p", "refund window", k=10, where=where)}
    lexical = {h.chunk.id for h in index.search_bm25("p", "refund window", k=10, where=where)}
    assert dense == expected
    assert lexical == expected


def test_a_filter_matching_nothing_returns_nothing(index: Index) -> None:
    where = {"effective_date": {"$lt": "2000-01-01"}}
    assert index.search_dense("p", "refund", k=5, where=where) == []
    assert index.search_bm25("p", "refund", k=5, where=where) == []
