"""Reading a yes/no judgement from the first reply token's log-probabilities (the live check is in e2e)."""

from __future__ import annotations

import math

import pytest

from app.query.stages.answerability import yes_probability


def test_yes_and_no_mass_is_summed_over_case_and_leading_space() -> None:
    logprobs = {"Yes": math.log(0.3), " yes": math.log(0.1), "No": math.log(0.2), "no": math.log(0.2), "Maybe": 0.0}
    assert yes_probability(logprobs) == pytest.approx(0.4 / 0.8)


def test_a_reply_that_is_neither_word_is_no_judgement() -> None:
    assert yes_probability({"The": math.log(0.9), "Paris": math.log(0.05)}) is None
