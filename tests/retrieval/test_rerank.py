"""The Rerank stage and the CrossEncoder loader, with real models.

The cross-encoder here is the MiniLM encoder with a freshly initialised (seeded) one-logit head, saved as a
CrossEncoder folder: its scores carry no relevance, but they are real model outputs, which is all the stage's
contract (order by the model's score, record it) needs. Whether a *trained* reranker helps is measured by
`ragline reranker eval`, not asserted here.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from app.query.pipeline import Pipeline
from app.query.stages.rerank import Rerank
from app.resources import Resources
from retrieval.rerank import CrossEncoderReranker, RerankerError
from retrieval.types import QueryState

QUESTION = "How long do EU customers have to request a refund?"


@pytest.fixture(scope="module")
def reranker(cross_encoder_dir: Path) -> CrossEncoderReranker:
    return CrossEncoderReranker(cross_encoder_dir, max_length=128, batch_size=4)


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


def test_blend_weight_moves_from_fusion_order_to_reranker_order(
    sample_resources: Resources, reranker: CrossEncoderReranker
) -> None:
    hits = sample_resources.index.search_dense("sample", QUESTION, 8)
    model_order = [h.chunk.id for h in reranker.rerank(QUESTION, hits, weight=1.0)]
    assert [h.chunk.id for h in reranker.rerank(QUESTION, hits, weight=0.0)] == [h.chunk.id for h in hits]
    blended = reranker.rerank(QUESTION, hits, weight=0.5)
    assert sorted(h.chunk.id for h in blended) == sorted(model_order)
    assert all(0.0 <= h.score <= 1.0 for h in blended)  # both parts are min-max normalised
    with pytest.raises(ValueError, match="weight"):
        reranker.rerank(QUESTION, hits, weight=1.5)


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


def test_missing_folder_fails_when_the_pipeline_is_built(tmp_path: Path, settings_for) -> None:
    settings = settings_for(tmp_path, reranker=str(tmp_path / "no-such-reranker"))
    with pytest.raises(RerankerError, match=r"does not exist.*ragline reranker train"):
        Pipeline(Resources(settings))


def test_bi_encoder_folder_is_refused(embedder_dir: Path) -> None:
    with pytest.raises(RerankerError, match=r"SentenceTransformer.*not a cross-encoder"):
        CrossEncoderReranker(embedder_dir)


def test_multi_label_classifier_is_refused(tmp_path: Path, cross_encoder_dir: Path) -> None:
    import json
    import shutil

    folder = tmp_path / "classifier"
    shutil.copytree(cross_encoder_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b", "2": "c"}
    config.pop("num_labels", None)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(RerankerError, match="3-label"):
        CrossEncoderReranker(folder)


def test_eval_variant_reranks_the_fused_lists(sample_resources: Resources, reranker: CrossEncoderReranker) -> None:
    from app.reranker.evaluate import rerank_variant
    from eval.retrieval_bench import evaluate_variants, gather, standard_variants

    queries = {"q1": QUESTION, "q2": "Which command rotates a gateway token?"}
    candidates = gather(sample_resources.index, "sample", queries, depth=10, progress=False)
    variants = standard_variants(alphas=[0.5])
    hybrid = {"convex(α=0.50)": variants["convex(α=0.50)"]}
    variants = {**hybrid, **rerank_variant(reranker, candidates, queries, hybrid["convex(α=0.50)"], 5, progress=False)}
    qrels = {"q1": {"policies/refund-policy-eu-2024.md": 1}, "q2": {"runbooks/err-4012-gateway-token-expired.md": 1}}

    results = evaluate_variants(candidates, qrels, variants, ks=[10])

    assert set(results) == {"convex(α=0.50)", "hybrid+rerank"}
    assert len(candidates.ms["rerank"]) == 2
    fused = hybrid["convex(α=0.50)"](candidates.lists["q1"])
    reranked = variants["hybrid+rerank"](candidates.lists["q1"])
    assert {h.chunk.id for h in reranked[:5]} == {h.chunk.id for h in fused[:5]}
    assert [h.chunk.id for h in reranked[5:]] == [h.chunk.id for h in fused[5:]]
