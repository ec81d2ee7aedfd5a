"""What the generator returned, made safe to show: empty replies and replies cut at the token limit."""

from __future__ import annotations

import pytest

from app.query.outcome import EMPTY_ANSWER, TRUNCATED_NOTE, settle


@pytest.mark.parametrize(
    ("text", "reason", "expected"),
    [
        ("", "stop", EMPTY_ANSWER),
        ("   ", "length", EMPTY_ANSWER),
        ("Refunds take 30 days [2].", "stop", "Refunds take 30 days [2]."),
        (
            "Refunds take 30 days [2]. EU customers can also ask for [",
            "length",
            f"Refunds take 30 days [2].\n\n{TRUNCATED_NOTE}",
        ),
        ("Refunds take thirty [1", "length", f"Refunds take thirty\n\n{TRUNCATED_NOTE}"),
    ],
)
def test_empty_and_cut_answers_are_settled(text: str, reason: str, expected: str) -> None:
    assert settle(text, reason)[0] == expected
