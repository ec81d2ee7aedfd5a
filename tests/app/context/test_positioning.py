"""Evidence order: edge positioning puts the best first and the second best last; structured text is detected."""

from __future__ import annotations

import pytest

from app.context.positioning import document_order, edge_last_order, edge_order, make_positioner
from app.context.structured import has_identifier, structured_kind
from retrieval.types import Chunk, Hit


def _hit(chunk_id: str, doc_id: str, index: int = 0) -> Hit:
    return Hit(Chunk(id=chunk_id, doc_id=doc_id, text=chunk_id, metadata={"chunk_index": index}), 1.0, "fused")


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, [1]), (2, [1, 2]), (3, [1, 3, 2]), (5, [1, 3, 5, 4, 2]), (6, [1, 3, 5, 6, 4, 2])],
)
def test_edge_order_best_first_second_last_weakest_in_the_middle(n: int, expected: list[int]) -> None:
    assert edge_order(list(range(1, n + 1))) == expected


def test_document_order_groups_chunks_by_document_in_reading_order() -> None:
    ranked = [_hit("b2", "b", 2), _hit("a1", "a", 1), _hit("b0", "b", 0), _hit("a0", "a", 0)]
    assert [h.chunk.id for h in document_order(ranked)] == ["b0", "b2", "a0", "a1"]


def test_unknown_positioning_is_a_clear_error() -> None:
    assert [h.chunk.id for h in make_positioner("relevance")([_hit("x", "d"), _hit("y", "d")])] == ["x", "y"]
    with pytest.raises(ValueError, match="positioning must be one of edge, edge-last, relevance, document"):
        make_positioner("middle")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('{"plan": "pro", "seats": [1, 2]}', "json"),
        ("```python\nprint('x')\n```", "code"),
        ("def refund(charge):\n    if charge.late:\n        return None\n    return charge.amount\n", "code"),
        ("SELECT id, amount FROM charges WHERE region = 'EU'", "sql"),
        ("| plan | price |\n|---|---|\n| Pro | 12 |", "table"),
        ("plan\tprice\tseats\nPro\t12\t5\nStarter\t5\t1\n", "table"),
        ("plan: Starter; max_seats: 1; calls: 60\nplan: Pro; max_seats: 5; calls: 600", "table"),
        ("EU customers have 30 days to request a refund. The policy replaced the 2022 one.", None),
    ],
)
def test_structured_text_is_detected(text: str, kind: str | None) -> None:
    assert structured_kind(text) == kind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Error ERR-4012 means the card was declined.", True),
        ("Set max_retries in the config.", True),
        ("Call getInvoice with the id.", True),
        ("See docs/billing/refunds.md for details.", True),
        ("Upgrade to 2.14.4 first.", True),
        ("Refunds take thirty days in the European Union.", False),
    ],
)
def test_identifiers_are_detected(text: str, expected: bool) -> None:
    assert has_identifier(text) is expected


def test_edge_last_puts_the_best_at_the_end_and_the_second_at_the_start() -> None:
    assert edge_last_order([1, 2, 3, 4, 5, 6]) == [2, 4, 6, 5, 3, 1]
    assert edge_last_order([1]) == [1] and edge_last_order([]) == []
    ranked = [_hit("best", "a"), _hit("second", "b"), _hit("third", "c")]
    assert [h.chunk.id for h in make_positioner("edge-last")(ranked)] == ["second", "third", "best"]
