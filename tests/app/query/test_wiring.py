"""Stage wiring is checked when the stages are put together: a stage reading what nothing wrote fails at build."""

from __future__ import annotations

import pytest

from app.query.build import build_stages
from app.query.stages.fuse import Fuse
from app.query.stages.select import SelectContext
from app.query.wiring import StagePlan, check_wiring
from app.resources import Resources
from retrieval.fusion import ConvexFusion
from retrieval.types import Stage


def _plan_with(resources: Resources, name: str, replacement: Stage) -> StagePlan:
    """The default stages with the stage called ``name`` replaced, put together (and so checked) again."""
    plan = build_stages(resources, resources.settings)
    stages = tuple(replacement if stage.name == name else stage for stage in plan.retrieval)
    return StagePlan(stages, plan.generate, plan.check_citations)


def test_the_default_stages_are_wired(sample_resources: Resources) -> None:
    plan = build_stages(sample_resources, sample_resources.settings)
    check_wiring([*plan.retrieval, plan.generate, plan.check_citations])
    assert [stage.name for stage in plan.retrieval][:3] == ["hybrid_search", "fusion", "dedup"]


def test_a_misspelt_source_fails_at_build_naming_the_stage_and_the_input(sample_resources: Resources) -> None:
    with pytest.raises(ValueError, match=r"stage 'select' \(position \d+\) reads 'deduplicate', which no earlier"):
        _plan_with(sample_resources, "select", SelectContext(4, source="deduplicate"))


def test_a_stage_before_its_input_is_written_fails_at_build() -> None:
    with pytest.raises(ValueError, match=r"stage 'fusion' \(position 0\) reads 'bm25', 'dense'"):
        check_wiring([Fuse(ConvexFusion(0.5))])


def test_an_unlisted_source_names_what_was_available(sample_resources: Resources) -> None:
    with pytest.raises(ValueError, match=r"available then: .*bm25.*dense"):
        _plan_with(sample_resources, "fusion", Fuse(ConvexFusion(0.5), sources=("bm25", "sparse")))
