"""Stored answers of long experiment runs: read back after a restart, never across models."""

from __future__ import annotations

from pathlib import Path

from eval.experiments.answer_cache import AnswerCache


def test_answer_cache_survives_a_restart_and_keys_on_the_model(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    cache = AnswerCache(path, "model-a", "t")
    assert cache.get("prompt") is None
    assert cache.put("prompt", "Ottawa [1].") == 1
    assert AnswerCache(path, "model-a", "t").get("prompt") == "Ottawa [1]."
    assert AnswerCache(path, "model-b", "t").get("prompt") is None
