"""The ablation preset: built only from settings the build has, with skipped steps and their reasons."""

from __future__ import annotations

from app.settings import Settings
from eval.presets import build_preset


def test_ablation_uses_only_existing_settings_and_says_what_it_skipped() -> None:
    preset = build_preset("ablation", Settings.model_fields, reranker=None)
    names = [c.name for c in preset.configs]
    assert names[:3] == ["bm25", "dense", "hybrid"]
    assert preset.configs[0].options["fusion_alpha"] == 0.0 and preset.configs[1].options["fusion_alpha"] == 1.0
    assert {s.name for s in preset.skipped} == {"+rerank"}
    assert "RAGLINE_RERANKER" in preset.skipped[0].reason
    for config in preset.configs:
        Settings.model_validate({**Settings().model_dump(), **config.options})  # every config is valid settings

    fields = {name: f for name, f in Settings.model_fields.items() if name not in ("compression", "memory")}
    reduced = build_preset("ablation", fields, reranker="/nonexistent/cross-encoder")
    reasons = {s.name: s.reason for s in reduced.skipped}
    assert "no 'compression' setting" in reasons["+compression"] and "no 'memory' setting" in reasons["+memory"]
    assert "neither a registered model nor a folder" in reasons["+rerank"]
    assert all("compression" not in c.options for c in reduced.configs)


def test_ablation_finds_a_trained_reranker_in_the_models_dir(tmp_path) -> None:
    (tmp_path / "my-reranker").mkdir()
    training = build_preset("ablation", Settings.model_fields, reranker="my-reranker", models_dir=tmp_path)
    assert "no config.json" in training.skipped[0].reason
    (tmp_path / "my-reranker" / "config.json").write_text("{}")
    ready = build_preset("ablation", Settings.model_fields, reranker="my-reranker", models_dir=tmp_path)
    assert not ready.skipped
    names = [c.name for c in ready.configs]
    assert names == ["bm25", "dense", "hybrid", "+rerank", "+positioning", "+compression", "+memory"]
    assert ready.configs[-1].options["reranker"] == "my-reranker" and ready.configs[2].options["reranker"] is None
