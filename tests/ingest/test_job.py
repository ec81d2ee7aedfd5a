"""The ingestion job against a real index: incremental, pruning, bad files reported, crash repair."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ingest.chunkers.fixed import FixedSizeChunker, load_token_counter
from ingest.job import ingest_path
from ingest.samples import sample_corpus_dir
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import DocumentWrite, Index


@pytest.fixture(scope="module")
def embedder(embedder_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(embedder_dir)


@pytest.fixture(scope="module")
def chunker(generator_dir: Path) -> FixedSizeChunker:
    return FixedSizeChunker(load_token_counter(generator_dir), chunk_size=128, chunk_overlap=16)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(sample_corpus_dir() / "policies", root)
    return root


def _consistent(index: Index, collection: str) -> None:
    counts = index.counts(collection)
    assert counts.consistent, counts
    assert set(index.manifest.chunk_ids(collection)) == index.vectors.ids(collection)


def test_reingest_is_incremental_and_prunes(tmp_path: Path, corpus: Path, embedder, chunker) -> None:
    index = Index(tmp_path / "data", embedder)
    first = ingest_path(index, chunker, corpus, "c", progress=False)
    assert first.added and not first.failed
    ids_before = set(index.manifest.chunk_ids("c"))
    _consistent(index, "c")

    again = ingest_path(index, chunker, corpus, "c", progress=False)
    assert again.added == [] and again.updated == [] and len(again.skipped) == len(first.added)
    assert set(index.manifest.chunk_ids("c")) == ids_before

    (corpus / "refund-policy-uk.md").write_text("# UK refunds\n\nUK customers now have 45 days to ask for a refund.")
    (corpus / "acceptable-use.txt").unlink()
    third = ingest_path(index, chunker, corpus, "c", prune=True, progress=False)
    assert third.updated == ["refund-policy-uk.md"]
    assert third.deleted == ["acceptable-use.txt"]
    _consistent(index, "c")
    hits = index.search_bm25("c", "45 days UK refund", k=3)
    assert hits[0].chunk.doc_id == "refund-policy-uk.md"


def test_bad_files_are_reported_and_the_rest_is_ingested(tmp_path: Path, corpus: Path, embedder, chunker) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.txt").write_bytes(b"\x00\x01garbage")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the root")
    os.symlink(outside, corpus / "link.txt")
    index = Index(tmp_path / "data", embedder)
    summary = ingest_path(index, chunker, corpus, "c", progress=False, max_file_mb=1)
    assert set(summary.failed) == {"empty.txt", "binary.txt", "broken.pdf", "link.txt"}
    assert "outside the ingestion root" in summary.failed["link.txt"]
    assert len(summary.added) == 10
    _consistent(index, "c")


def test_repair_rolls_back_an_interrupted_write(tmp_path: Path, corpus: Path, embedder, chunker) -> None:
    index = Index(tmp_path / "data", embedder)
    ingest_path(index, chunker, corpus, "c", progress=False)
    clean_ids = set(index.manifest.chunk_ids("c"))
    # Simulate a crash after Chroma received new vectors but before the manifest marked the document indexed.
    from ingest.loaders import load_document

    document = load_document(corpus / "refund-policy-us.html", corpus)
    changed = chunker.chunk(type(document)(document.doc_id, document.text + "\n\nAddendum.", document.metadata))
    index.manifest.begin_replace("c", document.doc_id, "new-hash", changed)
    index.vectors.upsert("c", changed, embedder.embed([c.text for c in changed]))

    reopened = Index(tmp_path / "data", embedder)
    assert reopened.repair("c") == ["refund-policy-us.html"]
    rerun = ingest_path(reopened, chunker, corpus, "c", progress=False)
    assert rerun.added == ["refund-policy-us.html"]
    assert set(reopened.manifest.chunk_ids("c")) == clean_ids
    _consistent(reopened, "c")


def test_write_rejects_nothing_silently(tmp_path: Path, embedder) -> None:
    index = Index(tmp_path / "data", embedder)
    index.write("c", [DocumentWrite("empty", "h", [])])
    index.commit("c")
    assert index.counts("c").chunks == 0
