"""The pure text parts of memory's prompts: cleaning a rewritten query, rejecting one that drops the question."""

from __future__ import annotations

import pytest

from memory.prompts import clean_rewrite, keeps_question


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ('"What is the refund window for UK customers?"\n', "What is the refund window for UK customers?"),
        ("Standalone question: How long are EU backups kept?", "How long are EU backups kept?"),
        ("\n\nFirst line\nsecond line", "First line"),
        ("   \n", "and for UK?"),
    ],
)
def test_clean_rewrite(generated: str, expected: str) -> None:
    assert clean_rewrite(generated, "and for UK?", max_chars=200) == expected


def test_a_rewrite_that_drops_the_question_is_rejected() -> None:
    assert keeps_question("What is the refund window for UK customers?", "and for UK customers?")
    assert keeps_question("How do I fix error ERR-4012?", "How is it fixed?")
    # A small generator's typical failure: it repeats the previous question instead of rewriting this one.
    assert not keeps_question(
        "What does the glossary say a ledger entry is?", "Which command rotates a merchant's gateway token?"
    )
