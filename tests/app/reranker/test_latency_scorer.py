"""The latency step times the scorer that was chosen; when hybrid alone wins, the first one tried, not a global
default length the evaluation never scored."""

from __future__ import annotations

from pathlib import Path

from app.reranker.evaluation_run import RerankerEvalRequest, _chosen_scorer
from app.settings import Settings


def test_the_chosen_candidates_mode_and_length_are_timed() -> None:
    request = RerankerEvalRequest(Path("model"), Path("beir"), lengths=(128,), context_lengths=(512,))
    settings = Settings()
    assert _chosen_scorer("len=128 n=30 w=0.4", request, settings) == ("isolated", 128)
    assert _chosen_scorer("long=512 w=0.3", request, settings) == ("long-context", 512)


def test_hybrid_alone_times_the_first_scorer_tried() -> None:
    settings = Settings()
    assert settings.rerank_max_length != 128
    only_isolated = RerankerEvalRequest(Path("model"), Path("beir"), lengths=(128,))
    assert _chosen_scorer("hybrid", only_isolated, settings) == ("isolated", 128)
    only_joint = RerankerEvalRequest(Path("model"), Path("beir"), lengths=(), context_lengths=(256,))
    assert _chosen_scorer("hybrid", only_joint, settings) == ("long-context", 256)
