"""The manifest on both engines: the pending → indexed write protocol, stale vectors, and the collection version
that tells caches (BM25 on other replicas) that what a collection serves has changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from retrieval.manifest import Manifest
from retrieval.types import Chunk


def _chunks(doc_id: str, *texts: str) -> list[Chunk]:
    return [
        Chunk(id=f"{doc_id}#{i}", doc_id=doc_id, text=text, metadata={"n": i}, level=0, parent_id=None)
        for i, text in enumerate(texts)
    ]


@pytest.fixture
def manifest(tmp_path: Path, database_url: str | None) -> Manifest:
    return Manifest(tmp_path / "ragline.sqlite", database_url=database_url)


def test_a_document_serves_its_chunks_only_once_indexed(manifest: Manifest) -> None:
    manifest.begin_replace("c", "a.md", "h1", _chunks("a.md", "one", "two"))
    assert manifest.chunks("c") == [] and manifest.pending_documents("c") == ["a.md"]
    assert [c.text for c in manifest.chunks("c", indexed_only=False)] == ["one", "two"]
    manifest.mark_indexed("c", "a.md")
    served = manifest.chunks("c")
    assert [(c.id, c.text, c.metadata) for c in served] == [("a.md#0", "one", {"n": 0}), ("a.md#1", "two", {"n": 1})]
    record = manifest.document("c", "a.md")
    assert record is not None and (record.status, record.content_hash, record.chunk_count) == ("indexed", "h1", 2)
    assert manifest.collections() == ["c"] and manifest.pending_documents("c") == []


def test_replaced_and_deleted_chunks_become_stale_vectors_until_cleared(manifest: Manifest) -> None:
    manifest.begin_replace("c", "a.md", "h1", _chunks("a.md", "one", "two"))
    manifest.mark_indexed("c", "a.md")
    manifest.begin_replace("c", "a.md", "h2", _chunks("a.md", "uno"))  # a#0 comes back, a#1 goes
    assert manifest.stale_vector_ids("c") == ["a.md#1"]
    manifest.mark_indexed("c", "a.md")
    manifest.begin_delete("c", "a.md")
    assert sorted(manifest.stale_vector_ids("c")) == ["a.md#0", "a.md#1"]
    assert manifest.document("c", "a.md") is None and manifest.chunks("c", indexed_only=False) == []
    manifest.clear_stale("c", ["a.md#0", "a.md#1"])
    assert manifest.stale_vector_ids("c") == []


def test_pending_documents_can_be_limited_to_old_ones(manifest: Manifest) -> None:
    manifest.begin_replace("c", "a.md", "h", _chunks("a.md", "x"))
    assert manifest.pending_documents("c", updated_before=0.0) == []
    assert manifest.pending_documents("c", updated_before=2e9) == ["a.md"]


def test_every_change_to_what_a_collection_serves_bumps_its_version(manifest: Manifest) -> None:
    assert manifest.collection_version("c") == 0
    manifest.begin_replace("c", "a.md", "h1", _chunks("a.md", "one"))
    manifest.mark_indexed("c", "a.md")
    after_write = manifest.collection_version("c")
    assert after_write == 2
    manifest.chunks("c")
    manifest.clear_stale("c", [])
    assert manifest.collection_version("c") == after_write  # reads and stale bookkeeping change nothing served
    manifest.begin_delete("c", "a.md")
    assert manifest.collection_version("c") == after_write + 1
    assert manifest.collection_version("other") == 0


def test_a_failed_write_changes_neither_rows_nor_version(manifest: Manifest) -> None:
    manifest.begin_replace("c", "a.md", "h1", _chunks("a.md", "one"))
    manifest.mark_indexed("c", "a.md")
    version = manifest.collection_version("c")
    clash = [Chunk(id="a.md#0", doc_id="b.md", text="dup", metadata={}, level=0, parent_id=None)]
    with pytest.raises(IntegrityError):  # b.md claims a chunk id a.md owns: the primary key refuses it
        manifest.begin_replace("c", "b.md", "h", clash)
    assert manifest.document("c", "b.md") is None and manifest.collection_version("c") == version
    assert [c.text for c in manifest.chunks("c")] == ["one"]


def test_the_manifest_survives_reopening(tmp_path: Path, database_url: str | None) -> None:
    first = Manifest(tmp_path / "ragline.sqlite", database_url=database_url)
    first.begin_replace("c", "a.md", "h1", _chunks("a.md", "one"))
    first.mark_indexed("c", "a.md")
    first.close()
    again = Manifest(tmp_path / "ragline.sqlite", database_url=database_url)
    assert [c.text for c in again.chunks("c")] == ["one"] and again.collection_version("c") == 2
