"""The chat shows the grounding warning above an answer no cited source supports, and nothing for one that is."""

from __future__ import annotations

from typing import Any

from streamlit.testing.v1 import AppTest

from app.query.grounding import UNGROUNDED_WARNING
from app.query.pipeline import Answer, Pipeline
from app.query.stages.citations import CheckCitations
from retrieval.types import Chunk, Hit, QueryState

PAGING = "Out of hours, ERR-4012 pages the on-call database engineer through the primary rota."
UNSUPPORTED = "The incident commander should be paged by phone."
SUPPORTED = "The on-call database engineer is paged [1]."


def _checked_answer(draft: str) -> Answer:
    """An answer as the pipeline makes it: ``draft`` through the real citation and grounding check."""
    state = QueryState(question="Who should be paged when ERR-4012 fires at night?", collection="c")
    state.context = [Hit(Chunk(id="c1", doc_id="runbook.md", text=PAGING, metadata={"title": "Runbook"}), 0.9, "fused")]
    state.candidates["selected"] = list(state.context)
    state.answer = draft
    return Pipeline._answer(CheckCitations()(state))


def _answer_page(answer: object) -> None:  # AppTest runs this source alone: only builtins in its annotations
    from app.ui.views import render_answer_text

    render_answer_text(answer)


def _main_elements(at: AppTest) -> list[tuple[str, Any]]:
    """The page's top-level elements in the order a reader sees them."""
    return [(node.type, getattr(node, "value", None)) for _, node in sorted(at.main.children.items())]


def test_an_ungrounded_answer_is_shown_under_the_warning() -> None:
    answer = _checked_answer(UNSUPPORTED)
    assert not answer.grounded
    at = AppTest.from_function(_answer_page, args=(answer,), default_timeout=60).run()
    assert not at.exception, at.exception
    assert _main_elements(at) == [("warning", UNGROUNDED_WARNING), ("markdown", UNSUPPORTED)]
    assert at.warning[0].value == UNGROUNDED_WARNING


def test_a_grounded_answer_has_no_warning() -> None:
    answer = _checked_answer(SUPPORTED)
    assert answer.grounded
    at = AppTest.from_function(_answer_page, args=(answer,), default_timeout=60).run()
    assert not at.exception, at.exception
    assert not at.warning
    assert [kind for kind, _ in _main_elements(at)] == ["markdown"]
