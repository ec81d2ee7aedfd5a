"""The building blocks of the position experiment: where the gold passage is placed."""

from __future__ import annotations

from eval.experiments.position import place, positions


def test_gold_is_placed_first_middle_and_last() -> None:
    slots = positions(5)
    assert slots == {"first": 0, "middle": 2, "last": 4}
    assert [place("g", ["a", "b", "c", "d"], slot).index("g") for slot in slots.values()] == [0, 2, 4]
