"""The CrossEncoder reranker and its loader, with real models.

The cross-encoder here is the MiniLM encoder with a freshly initialised (seeded) one-logit head, saved as a
CrossEncoder folder: its scores carry no relevance, but they are real model outputs, which is all the stage's
contract (order by the model's score) needs. Whether a *trained* reranker helps is measured by
`ragline reranker eval`, not asserted here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.query.pipeline import Pipeline
from app.resources import Resources
from retrieval.rerank import CrossEncoderReranker, RerankerError

QUESTION = "How long do EU customers have to request a refund?"


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
    from eval.rerank_quality import rerank_variant
    from eval.retrieval_quality import evaluate_variants, gather, standard_variants

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
