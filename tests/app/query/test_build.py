"""Every combination of the query options the settings allow builds a correctly wired pipeline."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from app.query.build import build_stages
from app.query.stages.position import PositionContext
from app.resources import Resources

POSITIONINGS = ("edge", "edge-last", "relevance", "document")
COMPRESSIONS = ("off", "auto", "llmlingua", "longllmlingua")
"""``llmlingua2`` needs a token-classification model that does not ship offline: its build error is tested in
``tests/app/context/test_compression.py``."""


@pytest.mark.parametrize(("rerank", "hyde"), list(itertools.product((False, True), repeat=2)))
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_option_combination_builds(
    sample_resources: Resources, cross_encoder_dir: Path, rerank: bool, hyde: bool, compression: str
) -> None:
    for positioning, abstain, answerability in itertools.product(POSITIONINGS, (0.0, 0.27), (False, True)):
        settings = sample_resources.settings.model_copy(
            update={
                "reranker": str(cross_encoder_dir) if rerank else None,
                "hyde": hyde,
                "compression": compression,
                "positioning": positioning,
                "abstain_threshold": abstain,
                "answerability_check": answerability,
            }
        )
        plan = build_stages(sample_resources, settings)
        names = [stage.name for stage in plan.retrieval]
        assert ("rerank" in names) is rerank and ("hyde" in names) is hyde
        assert ("compress" in names) is (compression != "off")
        assert ("answerable" in names) is answerability and "abstain" in names
        position = next(stage for stage in plan.retrieval if isinstance(stage, PositionContext))
        assert position.positioning == positioning
        select = next(stage for stage in plan.retrieval if stage.name == "select")
        screen = next(stage for stage in plan.retrieval if stage.name == "screen")
        window = next(stage for stage in plan.retrieval if stage.name == "window")
        assert select.reads == ("screened",) and screen.reads == ("windowed",)
        assert window.reads == (("reranked",) if rerank else ("deduplicated",))  # windows of the final ranking


def test_the_injection_screen_can_be_turned_off(sample_resources: Resources) -> None:
    settings = sample_resources.settings.model_copy(update={"injection_screen": False})
    plan = build_stages(sample_resources, settings)
    assert "screen" not in [stage.name for stage in plan.retrieval]
    assert next(stage for stage in plan.retrieval if stage.name == "select").reads == ("windowed",)
