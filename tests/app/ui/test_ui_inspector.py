"""The context inspector's data functions, on a real retrieval trace and on the documented trace shapes."""

from __future__ import annotations

import pytest

from app.query.pipeline import Pipeline
from app.resources import Resources
from app.ui import inspector
from retrieval.types import QueryState

QUESTION = "How long do EU customers have to request a refund?"

# The shapes the context stages document for their trace entries (budget on "assemble", positioning and
# compression entries), written out here so the inspector is tested against the contract, not a guess.
CONTRACT_TRACE = {
    "question": QUESTION,
    "collection": "sample",
    "stages": [
        {"stage": "bm25", "items_in": 0, "items_out": 3, "ms": 2.0,
         "hits": [{"chunk_id": "a", "doc_id": "A", "score": 9.1}, {"chunk_id": "b", "doc_id": "B", "score": 7.0},
                  {"chunk_id": "c", "doc_id": "C", "score": 1.5}]},
        {"stage": "dense", "items_in": 0, "items_out": 2, "ms": 20.0,
         "hits": [{"chunk_id": "b", "doc_id": "B", "score": 0.8}, {"chunk_id": "d", "doc_id": "D", "score": 0.7}]},
        {"stage": "fusion", "items_in": 5, "items_out": 4, "ms": 0.1, "method": "convex", "alpha": 0.5,
         "hits": [{"chunk_id": "b", "doc_id": "B", "score": 0.9}, {"chunk_id": "a", "doc_id": "A", "score": 0.5},
                  {"chunk_id": "d", "doc_id": "D", "score": 0.4}, {"chunk_id": "c", "doc_id": "C", "score": 0.1}]},
        {"stage": "dedup", "items_in": 4, "items_out": 3, "ms": 1.0, "threshold": 0.95,
         "dropped": [{"chunk_id": "c", "duplicate_of": "a", "kind": "near"}]},
        {"stage": "rerank", "items_in": 3, "items_out": 3, "ms": 150.0,
         "hits": [{"chunk_id": "a", "doc_id": "A", "score": 0.97}, {"chunk_id": "b", "doc_id": "B", "score": 0.6},
                  {"chunk_id": "d", "doc_id": "D", "score": 0.1}]},
        {"stage": "select", "items_in": 3, "items_out": 3, "ms": 0.5, "chunk_ids": ["a", "b", "d"]},
        {"stage": "position", "items_in": 3, "items_out": 3, "ms": 0.1, "positioning": "edge",
         "order": ["a", "d", "b"], "relevance_ranks": [1, 3, 2]},
        {"stage": "compress", "items_in": 3, "items_out": 3, "ms": 900.0, "mode": "always", "method": "llmlingua2",
         "compressed": True, "tokens_before": 800, "tokens_after": 200, "ratio": 4.0,
         "sources": [{"chunk_id": "a", "before": 500, "after": 100, "verbatim": False}]},
        {"stage": "assemble", "items_in": 3, "items_out": 3, "ms": 3.0,
         "budget": {"B": 2000, "S": 90, "T": 10, "H": 0, "R": 200, "U": 15, "reserve": 384, "used": 315}},
        {"stage": "generate", "items_in": 3, "items_out": 1, "ms": 5000.0},
    ],
}  # fmt: skip


def test_candidate_rows_follow_every_scoring_stage_to_the_final_order() -> None:
    rows = inspector.candidate_rows(CONTRACT_TRACE)
    by_id = {row["chunk_id"]: row for row in rows}
    assert [row["chunk_id"] for row in rows] == ["a", "d", "b", "c"]  # final order first, then the rest
    assert list(rows[0]) == [
        "chunk_id", "doc_id", "BM25", "dense", "fused", "reranked", "duplicate of", "selected", "final position",
    ]  # fmt: skip
    assert by_id["b"] | {} == {
        "chunk_id": "b", "doc_id": "B", "BM25": 7.0, "dense": 0.8, "fused": 0.9, "reranked": 0.6,
        "duplicate of": None, "selected": 2, "final position": 3,
    }  # fmt: skip
    assert by_id["c"]["duplicate of"] == "a" and by_id["c"]["selected"] is None
    assert by_id["d"]["BM25"] is None  # not in BM25's recorded list


def test_budget_bar_has_every_term_the_unused_budget_and_the_reserve() -> None:
    value = inspector.budget(CONTRACT_TRACE)
    assert value is not None
    assert value.total == 2000 and value.used == 315 and value.free == 1685 and value.reserve == 384
    bar = {segment["part"]: segment["tokens"] for segment in value.bar()}
    assert bar == {
        "S system prompt": 90, "T tool schemas": 10, "H history": 0, "R retrieved evidence": 200,
        "U question": 15, "unused budget": 1685, "answer reserve": 384,
    }  # fmt: skip
    chart = inspector.budget_chart(value).to_dict()
    assert [layer["mark"]["type"] for layer in chart["layer"]] == ["bar", "text"]
    assert [v["label"] for v in chart["data"]["values"]] == ["S", "", "", "R", "", "free", "reserve"]


def test_positioning_compression_and_waterfall() -> None:
    order = inspector.final_order(CONTRACT_TRACE)
    assert order == inspector.Order(["a", "d", "b"], "position", "edge")
    squeeze = inspector.compression(CONTRACT_TRACE)
    assert squeeze is not None and squeeze.method == "llmlingua2"
    assert (squeeze.before, squeeze.after, squeeze.kept, squeeze.applied) == (800, 200, 0.25, True)
    assert squeeze.sources[0]["chunk_id"] == "a"
    skipped = {"stages": [{"stage": "compress", "mode": "auto", "evidence_tokens": 900, "allowance": 2000,
                           "compressed": False}]}  # fmt: skip
    left = inspector.compression(skipped)
    assert left is not None and left.applied is False and left.kept is None
    spans = inspector.waterfall(CONTRACT_TRACE)
    assert [s["stage"] for s in spans] == [s["stage"] for s in CONTRACT_TRACE["stages"]]
    assert spans[0]["start_ms"] == 0 and spans[1]["start_ms"] == spans[0]["end_ms"] == 2.0
    assert spans[-1]["end_ms"] == pytest.approx(sum(s["ms"] for s in CONTRACT_TRACE["stages"]))
    chart = inspector.waterfall_chart(spans).to_dict()
    assert chart["encoding"]["x2"]["field"] == "end_ms"


@pytest.mark.parametrize("trace", [{}, {"stages": []}, {"stages": [{"stage": "bm25"}]}, {"stages": None}])
def test_missing_parts_are_none_not_errors(trace: dict) -> None:
    assert inspector.budget(trace) is None
    assert inspector.compression(trace) is None
    assert inspector.final_order(trace) is None
    assert inspector.waterfall(trace) == []
    assert inspector.candidate_rows(trace) == []
    assert len(inspector.stage_summary(trace)) == len(trace.get("stages") or [])


@pytest.fixture(scope="module")
def retrieval_trace(sample_resources: Resources) -> dict:
    """A real trace: the pipeline's retrieval stages over the sample corpus (no generation needed)."""
    state = QueryState(question=QUESTION, collection="sample")
    for stage in Pipeline(sample_resources).retrieval:
        state = stage(state)
    return {"question": QUESTION, "collection": "sample", "stages": [entry.as_dict() for entry in state.trace]}


def test_real_trace_gives_scores_selection_and_timings(retrieval_trace: dict) -> None:
    rows = inspector.candidate_rows(retrieval_trace)
    assert rows and {"BM25", "dense", "fused"} <= set(rows[0])
    select = inspector.find_stage(retrieval_trace, "select")
    assert select is not None
    selected = [row["chunk_id"] for row in rows if row["selected"] is not None]
    assert sorted(selected, key=select["chunk_ids"].index) == select["chunk_ids"]
    assert any(row["doc_id"] == "policies/refund-policy-eu-2024.md" and row["selected"] for row in rows)
    order = inspector.final_order(retrieval_trace)
    assert order is not None and set(order.chunk_ids) == set(select["chunk_ids"])
    if inspector.find_stage(retrieval_trace, *inspector.POSITIONING_STAGES) is None:
        assert order.source == "select" and order.note and inspector.NOT_RECORDED in order.note
    spans = inspector.waterfall(retrieval_trace)
    assert [s["stage"] for s in spans] == [s["stage"] for s in retrieval_trace["stages"]]
    assert all(s["end_ms"] >= s["start_ms"] for s in spans)


def _inspector_page(trace: dict) -> None:
    from app.ui.views import render_inspector

    render_inspector(trace, key="t")


def test_inspector_view_renders_the_contract_trace() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_inspector_page, args=(CONTRACT_TRACE,), default_timeout=60).run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert "B=2,000 prompt tokens, used 315: S=90 · T=10 · H=0 · R=200 · U=15; answer reserve 384" in captions
    assert not any(inspector.NOT_RECORDED in c for c in captions)
    markdown = [m.value for m in at.markdown]
    assert "llmlingua2: 800 → 200 tokens, kept 25% (4.0× smaller)" in markdown
    assert any(m.startswith("From stage `position` (edge):") and "1. `a`\n2. `d`\n3. `b`" in m for m in markdown)
    assert [t.label for t in at.tabs] == ["BM25 (bm25)", "dense (dense)", "fused (fusion)", "reranked (rerank)"]


def test_inspector_view_says_not_recorded_for_an_empty_trace() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_inspector_page, args=({"stages": []},), default_timeout=60).run()
    assert not at.exception, at.exception
    captions = {c.value for c in at.caption}
    for part in ("Token budget", "Candidates", "Evidence order", "Compression", "Stage timings"):
        assert f"{part}: {inspector.NOT_RECORDED}" in captions


def test_waterfall_draws_concurrent_searches_side_by_side() -> None:
    trace = {
        "stages": [
            {"stage": "bm25", "ms": 18.0, "concurrent_with": "dense"},
            {"stage": "dense", "ms": 22.0, "concurrent_with": "bm25"},
            {"stage": "fusion", "ms": 0.5},
        ]
    }
    spans = {s["stage"]: s for s in inspector.waterfall(trace)}
    assert spans["bm25"]["start_ms"] == spans["dense"]["start_ms"] == 0
    assert spans["fusion"]["start_ms"] == 22.0  # after the longer of the two searches
    assert spans["fusion"]["end_ms"] == 22.5
