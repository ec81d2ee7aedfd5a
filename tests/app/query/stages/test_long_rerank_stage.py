"""The long-context rerank stage: built from ``rerank_mode``, wired where isolated rerank stands, and run end to end
through the real stages (real ingestion with the sentence-window chunker, Chroma, BM25, embedder, cross-encoder).
The cross-encoder's scores carry no relevance (a seeded head, see ``cross_encoder_dir``): what is checked is that
each candidate is scored in its document's joint passage and that the later stages read the result."""

from __future__ import annotations

from pathlib import Path

from app.ingestion import run_ingest
from app.query.build import build_stages
from app.query.pipeline import Pipeline
from app.query.stages.long_rerank import LongContextRerank
from app.query.stages.rerank import Rerank
from app.resources import Resources
from retrieval.types import QueryState
from tests.app.api.conftest import resources_like

DOCUMENTS = {
    "refunds.md": "# Refunds\n\nCustomers may return any item. The refund window is 30 days from delivery. "
    "EU customers get 14 more days under consumer law. Refunds go back to the original card.\n",
    "shipping.md": "# Shipping\n\nOrders ship within two days. Delivery takes a week in Europe. "
    "Express delivery costs extra and takes two days.\n",
    "warranty.md": "# Warranty\n\nEvery device carries a two-year warranty. The warranty covers defects, not wear. "
    "Claims need the original receipt.\n",
}
QUESTION = "How many days do EU customers have for a refund?"


def test_rerank_mode_picks_the_stage_and_both_modes_wire_the_same_way(
    sample_resources: Resources, cross_encoder_dir: Path
) -> None:
    for mode, kind in (("isolated", Rerank), ("long-context", LongContextRerank)):
        settings = sample_resources.settings.model_copy(
            update={"reranker": str(cross_encoder_dir), "rerank_mode": mode, "rerank_context_tokens": 256}
        )
        plan = build_stages(sample_resources, settings)
        rerank = next(stage for stage in plan.retrieval if stage.name == "rerank")
        assert type(rerank) is kind
        assert rerank.reads == ("deduplicated",) and rerank.writes == ("reranked",)
        window = next(stage for stage in plan.retrieval if stage.name == "window")
        assert window.reads == ("reranked",)
    long_stage = next(stage for stage in plan.retrieval if isinstance(stage, LongContextRerank))
    assert long_stage.reranker.max_length == 256  # the joint context, not the isolated pair length
    off = sample_resources.settings.model_copy(update={"reranker": None, "rerank_mode": "long-context"})
    assert "rerank" not in [stage.name for stage in build_stages(sample_resources, off).retrieval]


def test_long_context_rerank_end_to_end_on_a_sentence_window_collection(
    sample_resources: Resources, cross_encoder_dir: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCUMENTS.items():
        (corpus / name).write_text(text)
    resources = resources_like(
        sample_resources,
        tmp_path / "data",
        reranker=str(cross_encoder_dir),
        rerank_mode="long-context",
        rerank_context_tokens=256,
        rerank_top_n=8,
        rerank_weight=1.0,
    )
    summary = run_ingest(resources.settings, corpus, "sentences", prune=False, meta={}, chunker="sentence-window")
    assert not summary.failed and summary.chunks_written >= 9

    state = QueryState(QUESTION, "sentences")
    for stage in Pipeline(resources).retrieval:
        state = stage(state)

    rerank = next(entry.as_dict() for entry in state.trace if entry.stage == "rerank")
    assert rerank["mode"] == "long-context" and rerank["items_in"] == rerank["items_out"] == 8
    documents = {hit.chunk.doc_id for hit in state.candidates["deduplicated"][:8]}
    assert rerank["joint_passages"] == len(documents)  # each document's sentences fit 256 tokens: one passage
    assert rerank["scored_alone"] == 0
    reranked = state.candidates["reranked"]
    scores: dict[str, set[float]] = {}
    for hit in reranked:
        scores.setdefault(hit.chunk.doc_id, set()).add(round(hit.score, 5))
    assert all(len(values) == 1 for values in scores.values())  # weight 1: a document's sentences share its score
    assert [hit.stage for hit in reranked] == ["rerank"] * len(reranked)
    window = next(entry.as_dict() for entry in state.trace if entry.stage == "window")
    assert window["items_in"] == len(reranked) and window["expanded"] >= 1
    select = next(entry for entry in state.trace if entry.stage == "select")
    assert set(select.details["chunk_ids"]) <= {hit.chunk.id for hit in reranked}
