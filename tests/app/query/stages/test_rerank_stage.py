"""The Rerank stage with a real CrossEncoder: it orders by the model's score, traces it, and sits between dedup and
context selection in the pipeline. The model's scores carry no relevance (a seeded one-logit head, see the
``cross_encoder_dir`` fixture); the stage's contract does not need them to."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from app.query.pipeline import Pipeline
from app.query.stages.rerank import Rerank
from app.resources import Resources
from retrieval.rerank import CrossEncoderReranker
from retrieval.types import QueryState

QUESTION = "How long do EU customers have to request a refund?"


def test_stage_orders_by_cross_encoder_score_and_traces_it(
    sample_resources: Resources, reranker: CrossEncoderReranker
) -> None:
    hits = sample_resources.index.search_dense("sample", QUESTION, 8)
    scores = reranker.score(QUESTION, [h.chunk.text for h in hits])
    worst_first = [hits[i] for i in np.argsort(scores, kind="stable")]
    state = QueryState(question=QUESTION, collection="sample")
    state.candidates["deduplicated"] = worst_first

    state = Rerank(reranker, top_n=6)(state)

    reranked = state.candidates["reranked"]
    expected = [h.chunk.id for h in sorted(worst_first[:6], key=lambda h: -scores[hits.index(h)])]
    assert [h.chunk.id for h in reranked] == expected
    assert [h.stage for h in reranked] == ["rerank"] * 6
    assert all(a.score >= b.score for a, b in itertools.pairwise(reranked))
    entry = state.trace[-1]
    assert (entry.stage, entry.items_in, entry.items_out) == ("rerank", 6, 6)
    traced = entry.as_dict()["hits"]
    assert [t["chunk_id"] for t in traced] == expected
    assert traced[0]["score"] == pytest.approx(reranked[0].score, abs=1e-5)
    assert traced[0]["previous_rank"] == 6  # the best passage came in last


def test_pipeline_reranks_between_dedup_and_context(
    sample_resources: Resources, cross_encoder_dir: Path, settings_for
) -> None:
    settings = settings_for(sample_resources.settings.data_dir, reranker=str(cross_encoder_dir), rerank_top_n=5)
    resources = Resources(settings)
    resources.__dict__["index"] = sample_resources.index
    pipeline = Pipeline(resources)
    stages = [stage.name for stage in pipeline.retrieval]
    assert stages.index("rerank") == stages.index("dedup") + 1

    state = pipeline._prepare(QUESTION, "sample", None, pipeline.retrieval)

    reranked = [h.chunk.id for h in state.candidates["reranked"]]
    assert len(reranked) == 5
    select = next(entry for entry in state.trace if entry.stage == "select")
    assert select.items_in == 5  # context selection reads the reranked list, not the 30+ deduplicated
    assert select.details["chunk_ids"] and set(select.details["chunk_ids"]) <= set(reranked)
