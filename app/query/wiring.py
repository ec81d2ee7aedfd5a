"""The stages of one query, checked when they are put together.

Each stage declares the candidate lists and state fields it ``reads`` and ``writes``; a stage that reads what no
earlier stage writes (a misspelt source, a stage dropped from the list) fails here, with the stage and the missing
input named, instead of answering from an empty list on every query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.query.stages.citations import CheckCitations
from app.query.stages.generate import Generate
from retrieval.types import Stage

GIVEN = ("question", "collection", "filters", "search_query", "history")
"""What every query state holds before the first stage runs."""


def check_wiring(stages: Sequence[Stage]) -> None:
    """Raise ``ValueError`` naming the first stage that reads an input no earlier stage writes."""
    available = set(GIVEN)
    for position, stage in enumerate(stages):
        missing = [name for name in stage.reads if name not in available]
        if missing:
            raise ValueError(
                f"stage {stage.name!r} (position {position}) reads {', '.join(map(repr, missing))}, which no earlier "
                f"stage writes; available then: {', '.join(sorted(available))}"
            )
        available.update(stage.writes)


@dataclass(frozen=True)
class StagePlan:
    """Retrieval and context stages, then generation, then the citation check: built once, wiring checked.

    Generation is held apart (not only listed) because ``Pipeline.stream`` runs its streaming path.
    """

    retrieval: tuple[Stage, ...]
    generate: Generate
    check_citations: CheckCitations

    def __post_init__(self) -> None:
        check_wiring([*self.retrieval, self.generate, self.check_citations])
