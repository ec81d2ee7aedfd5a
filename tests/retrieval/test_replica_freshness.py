"""Two Index objects with their own data_dirs over one store (a shared SQLite file, or real PostgreSQL) act as two
API replicas: what one writes, the other's BM25 serves within the version-check bound, and never a write that has
not finished."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from retrieval.bm25 import BM25Config, BM25Index
from retrieval.collection_cache import CollectionCache
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import DocumentWrite, Index
from retrieval.manifest import CollectionChanges, DocStamp, Manifest
from retrieval.types import Chunk

TEXTS = {
    "eu": "EU customers can ask for a refund within 30 days.",
    "us": "US customers can ask for a refund within 14 days.",
    "sso": "Single sign-on uses SAML; configure the identity provider first.",
}


class FakeClock:
    """Time that moves only when the test says, so the bound is checked exactly without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeFailingManifest(Manifest):
    """The real manifest whose ``changes`` fails once after reading: a refresh dying half-way, which a real database
    would cause only by a crash at that instant."""

    failures = 0

    def changes(self, collection: str, known: dict[str, DocStamp]) -> CollectionChanges:  # type: ignore[override]
        result = super().changes(collection, known)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("connection lost half-way through the refresh")
        return result


def _doc(doc_id: str, text: str) -> DocumentWrite:
    return DocumentWrite(doc_id, doc_id, [Chunk(id=f"{doc_id}#0", doc_id=doc_id, text=text, metadata={"d": doc_id})])


@pytest.fixture(scope="module")
def embedder(embedder_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(embedder_dir)


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One store both replicas use: a SQLite file outside both data_dirs, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared' / 'ragline.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def replicas(
    tmp_path: Path, shared_url: str, embedder: SentenceTransformerEmbedder
) -> Callable[..., tuple[Index, Index]]:
    def make(version_check_ms: int = 0) -> tuple[Index, Index]:
        a = Index(tmp_path / "host-a", embedder, database_url=shared_url)
        b = Index(tmp_path / "host-b", embedder, database_url=shared_url, version_check_ms=version_check_ms)
        return a, b

    return make


def _bm25_ids(index: Index, query: str) -> set[str]:
    return {hit.chunk.id for hit in index.search_bm25("c", query, k=10)}


def test_a_write_through_one_replica_is_served_by_the_other(replicas: Callable[..., tuple[Index, Index]]) -> None:
    a, b = replicas()
    a.write("c", [_doc("eu", TEXTS["eu"]), _doc("sso", TEXTS["sso"])])
    a.commit("c")
    assert _bm25_ids(b, "refund") == {"eu#0"}
    a.write("c", [_doc("us", TEXTS["us"])])  # no commit on A: B reads the store, not A's process
    assert _bm25_ids(b, "refund") == {"eu#0", "us#0"}
    a.delete("c", "eu")
    assert _bm25_ids(b, "refund") == {"us#0"}
    a.write("c", [_doc("us", "US customers have no refund window; store credit only.")])
    hits = b.search_bm25("c", "store credit", k=5)
    assert [h.chunk.id for h in hits] == ["us#0"] and "store credit" in hits[0].chunk.text
    assert not (b.data_dir / "bm25").exists(), "BM25 is a cache in memory: nothing is written to B's data_dir"
    # what B serves is what a full bm25s build over the store's indexed chunks serves
    chunks = b.manifest.chunks("c")
    full = BM25Index.build([c.id for c in chunks], [c.text for c in chunks], BM25Config())
    for query in ["refund window", "single sign-on", "store credit"]:
        served = [(h.chunk.id, h.score) for h in b.search_bm25("c", query, k=5)]
        assert served and served == full.search(query, k=5), query


def test_the_other_replica_is_late_by_at_most_the_check_interval(replicas: Callable[..., tuple[Index, Index]]) -> None:
    a, b = replicas()
    clock = FakeClock()
    b.cache = CollectionCache(b.manifest, b.bm25_config, check_interval_s=5.0, clock=clock)
    a.write("c", [_doc("eu", TEXTS["eu"])])
    assert _bm25_ids(b, "refund") == {"eu#0"}  # version read at t=0
    a.write("c", [_doc("us", TEXTS["us"])])
    clock.now += 4.999
    assert _bm25_ids(b, "refund") == {"eu#0"}  # within the bound: the cached version may be served
    clock.now += 0.001
    assert _bm25_ids(b, "refund") == {"eu#0", "us#0"}  # 5 s after the last check: read again, the write is served
    assert b.cache.stats.checks == 2


def test_an_unfinished_write_is_never_served(replicas: Callable[..., tuple[Index, Index]]) -> None:
    a, b = replicas()
    a.write("c", [_doc("eu", TEXTS["eu"])])
    # a writer that died after recording its chunks as pending (the version moved, the document is not indexed)
    a.manifest.begin_replace("c", "us", "us", list(_doc("us", TEXTS["us"]).chunks))
    assert _bm25_ids(b, "refund") == {"eu#0"}
    assert "us#0" not in b.cache.state("c").chunks
    a.manifest.mark_indexed("c", "us")
    assert _bm25_ids(b, "refund") == {"eu#0", "us#0"}


def test_a_refresh_that_fails_half_way_leaves_the_previous_state(
    replicas: Callable[..., tuple[Index, Index]], shared_url: str, tmp_path: Path
) -> None:
    a, b = replicas()
    failing = FakeFailingManifest(tmp_path / "unused.sqlite", database_url=shared_url)
    cache = CollectionCache(failing, b.bm25_config)
    a.write("c", [_doc("eu", TEXTS["eu"])])
    before = cache.state("c")
    a.write("c", [_doc("us", TEXTS["us"])])
    failing.failures = 1
    with pytest.raises(ConnectionError):
        cache.state("c")
    assert cache.state("c", force=False).version > before.version  # the next search retries and catches up
    assert {i for i, _ in cache.state("c").bm25.search("refund", 5)} == {"eu#0", "us#0"}
    assert {i for i, _ in before.bm25.search("refund", 5)} == {"eu#0"}  # the old snapshot was never modified


def test_filters_skip_tombstoned_rows(replicas: Callable[..., tuple[Index, Index]]) -> None:
    a, b = replicas()
    a.write("c", [_doc("eu", TEXTS["eu"]), _doc("us", TEXTS["us"])])
    assert _bm25_ids(b, "refund") == {"eu#0", "us#0"}
    a.delete("c", "eu")
    hits = b.search_bm25("c", "refund", k=5, where={"d": {"$in": ["eu", "us"]}})
    assert [h.chunk.id for h in hits] == ["us#0"]
    assert len(b.cache.state("c").bm25.ids) == 2 and b.cache.state("c").bm25.n_docs == 1  # one tombstone
    assert np.isclose(hits[0].score, b.search_bm25("c", "refund", k=5)[0].score)
