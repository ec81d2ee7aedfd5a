"""Hybrid search on a real index: BM25 beside the query embedding, dedup reusing the searches' vectors, through
the pipeline stages that run its steps (HybridSearch, Fuse, Deduplicate) against the searches in turn, and through
``retrieval.hybrid.hybrid_search``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.query.stages.deduplicate import Deduplicate
from app.query.stages.fuse import Fuse
from app.query.stages.hybrid_search import HybridSearch
from app.query.stages.search import Search
from retrieval.dedup import Deduplicator
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.fusion import ConvexFusion
from retrieval.hybrid import hybrid_search
from retrieval.index import DocumentWrite, Index
from retrieval.types import Chunk, Hit, QueryState

DOCS = [
    ("refund-eu", "EU customers can request a refund within 30 days of purchase.", {"region": "EU"}),
    ("refund-eu-copy", "EU customers can request a refund within 30 days of a purchase.", {"region": "EU"}),
    ("refund-us", "US customers can request a refund within 14 days.", {"region": "US"}),
    ("sso", "Single sign-on is configured under Settings, then Security, with SAML.", {"region": "US"}),
    ("err", "Error ERR-4012 means the upload exceeded the attachment size limit.", {"region": "EU"}),
    ("billing", "Invoices are emailed on the first business day of each month.", {"region": "UK"}),
    ("export", "Admins can export all workspace data as a ZIP archive of JSON files.", {"region": "UK"}),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder_dir: Path) -> Index:
    index = Index(tmp_path_factory.mktemp("hybrid"), SentenceTransformerEmbedder(embedder_dir, query_backend="onnx"))
    index.write(
        "c",
        [DocumentWrite(doc, doc, [Chunk(id=doc, doc_id=doc, text=text, metadata=meta)]) for doc, text, meta in DOCS],
    )
    index.commit("c")
    return index


def _run(stages: list, question: str, filters: dict | None = None) -> QueryState:
    state = QueryState(question=question, collection="c", filters=filters)
    for stage in stages:
        state = stage(state)
    return state


def _ranked(hits: list[Hit]) -> list[tuple[str, float]]:
    return [(h.chunk.id, round(h.score, 5)) for h in hits]


@pytest.mark.parametrize("filters", [None, {"region": "EU"}])
def test_same_candidates_and_trace_as_the_two_searches_in_turn(index: Index, filters: dict | None) -> None:
    question = "how many days do I have to get a refund"
    hybrid = _run([HybridSearch(index, 5, 5)], question, filters)
    sequential = _run([Search(index, "bm25", 5), Search(index, "dense", 5)], question, filters)
    for source in ("bm25", "dense"):
        assert _ranked(hybrid.candidates[source]) == _ranked(sequential.candidates[source])
        assert hybrid.candidates[source], source
    assert [e.stage for e in hybrid.trace] == ["bm25", "dense"]
    bm25, dense = hybrid.trace
    assert bm25.items_out == len(hybrid.candidates["bm25"]) and dense.items_out == len(hybrid.candidates["dense"])
    assert dense.details["embed_ms"] > 0 and dense.details["search_ms"] > 0
    assert dense.details["embed_ms"] + dense.details["search_ms"] <= dense.ms + 0.01
    assert dense.details["concurrent_with"] == "bm25" and bm25.details["concurrent_with"] == "dense"
    if filters:
        assert {h.chunk.metadata["region"] for s in ("bm25", "dense") for h in hybrid.candidates[s]} == {"EU"}


def test_every_candidate_carries_its_stored_vector(index: Index) -> None:
    state = _run([HybridSearch(index, 5, 5)], "refund within 30 days")
    for source in ("bm25", "dense"):
        hits = state.candidates[source]
        stored = index.vectors.vectors("c", [h.chunk.id for h in hits])
        assert all(h.vector is not None for h in hits), source
        assert np.allclose(np.vstack([h.vector for h in hits]), stored, atol=1e-6), source


def test_dedup_after_hybrid_search_reads_nothing_more_and_drops_the_same(index: Index) -> None:
    fusion = ConvexFusion(0.5)
    state = _run([HybridSearch(index, 5, 5), Fuse(fusion), Deduplicate(index, 0.95)], "refund within 30 days")
    dedup = state.trace[-1]
    assert dedup.stage == "dedup" and dedup.details["vectors_fetched"] == 0
    dropped_ids = [d["chunk_id"] for d in dedup.details["dropped"]]
    assert len(dropped_ids) == 1 and dropped_ids[0] in {"refund-eu", "refund-eu-copy"}

    fetch_all = Deduplicator(lambda hits: index.vectors.vectors("c", [h.chunk.id for h in hits]), 0.95)
    kept, dropped = fetch_all(state.candidates["fused"])
    assert [h.chunk.id for h in state.candidates["deduplicated"]] == [h.chunk.id for h in kept]
    assert [d.dropped for d in dropped] == dropped_ids


def test_dedup_after_the_sequential_searches_fetches_only_bm25_only_hits(index: Index) -> None:
    stages = [Search(index, "bm25", 5), Search(index, "dense", 1), Fuse(ConvexFusion(0.5)), Deduplicate(index, 0.95)]
    state = _run(stages, "refund within 30 days")
    dense_ids = {h.chunk.id for h in state.candidates["dense"]}
    bm25_only = {h.chunk.id for h in state.candidates["bm25"]} - dense_ids
    assert all(h.vector is not None for h in state.candidates["dense"])
    assert all(h.vector is None for h in state.candidates["bm25"])
    assert bm25_only, "the test needs a BM25-only candidate"
    assert state.trace[-1].details["vectors_fetched"] == len(
        bm25_only & {h.chunk.id for h in state.candidates["fused"]}
    )


def test_a_failing_search_records_both_entries_and_raises(index: Index) -> None:
    state = QueryState(question="refund", collection="c", filters={"region": {"$regex": "E.*"}})
    with pytest.raises(ValueError):
        HybridSearch(index, 5, 5)(state)
    assert [e.stage for e in state.trace] == ["bm25", "dense"]


def test_bad_sizes_are_rejected(index: Index) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        HybridSearch(index, 0, 5)


def test_hybrid_search_gives_what_the_pipeline_stages_give(index: Index) -> None:
    question, fusion = "refund within 30 days", ConvexFusion(0.5)
    state = _run([HybridSearch(index, 5, 5), Fuse(fusion), Deduplicate(index, 0.95)], question)
    hits = hybrid_search(index, "c", question, bm25_k=5, dense_k=5, fusion=fusion, dedup_threshold=0.95)
    for source in ("bm25", "dense", "fused", "deduplicated"):
        assert _ranked(getattr(hits, source)) == _ranked(state.candidates[source]), source
    assert [e.stage for e in hits.trace] == [e.stage for e in state.trace] == ["bm25", "dense", "fusion", "dedup"]
    assert hits.trace[-1].details["dropped"] == state.trace[-1].details["dropped"]
    assert hits.trace[-1].details["vectors_fetched"] == 0


def test_without_a_threshold_nothing_is_deduplicated(index: Index) -> None:
    hits = hybrid_search(index, "c", "refund within 30 days", bm25_k=5, dense_k=5, fusion=ConvexFusion(0.5))
    assert hits.deduplicated == hits.fused
    assert {"refund-eu", "refund-eu-copy"} <= {h.chunk.id for h in hits.deduplicated}
    assert [e.stage for e in hits.trace] == ["bm25", "dense", "fusion"]


def test_a_misspelt_source_is_a_key_error_naming_the_stage_and_the_list(index: Index) -> None:
    state = _run([HybridSearch(index, 5, 5)], "refund within 30 days")
    with pytest.raises(KeyError, match=r"'dedup' reads candidates\['fussed'\], which no earlier stage wrote"):
        Deduplicate(index, 0.95, source="fussed")(state)
