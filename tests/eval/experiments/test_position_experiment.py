"""The position experiment: where the gold passage is placed, and how a sweep is summarised and paired."""

from __future__ import annotations

from pathlib import Path

from eval.experiments.position import PositionExperiment, PositionSweep, place, positions


def test_gold_is_placed_first_middle_and_last() -> None:
    slots = positions(5)
    assert slots == {"first": 0, "middle": 2, "last": 4}
    assert [place("g", ["a", "b", "c", "d"], slot).index("g") for slot in slots.values()] == [0, 2, 4]


def _sweep_row(qid: str, slot: str, without: bool, with_edge: bool, gold_slot: int) -> dict:
    return {
        "id": qid,
        "slot": slot,
        "gold_rank": 1,
        "answer_contained_without": without,
        "answer_without": "a",
        "gold_slot_with_edge": gold_slot,
        "answer_contained_with_edge": with_edge,
        "answer_with_edge": "a",
    }


def test_a_sweep_is_summarised_per_slot_and_paired_against_gold_first(tmp_path: Path) -> None:
    experiment = PositionExperiment(tmp_path, 2, [3], "model", ["edge"], ["first", "middle", "last"])
    rows = [
        _sweep_row("q0", "first", True, True, 1),
        _sweep_row("q0", "middle", False, True, 1),
        _sweep_row("q0", "last", True, True, 1),
        _sweep_row("q1", "first", True, False, 1),
        _sweep_row("q1", "middle", False, False, 1),
        _sweep_row("q1", "last", False, False, 1),
    ]
    experiment.add(PositionSweep(3, rows, [], 1.0))
    assert [(r["position"], r["accuracy_contains_without"]) for r in experiment.results] == [
        ("first", 1.0),
        ("middle", 0.0),
        ("last", 0.5),
    ]
    assert all(r["accuracy_contains_with_edge"] == 0.5 for r in experiment.results)
    assert experiment.shortfall_points == {"3": 50.0}  # gold first 1.0 against edge 0.5
    assert experiment.paired["3"]["questions"] == 2 and experiment.paired["3"]["only_baseline_right"] == 1
    report = experiment.report()
    assert report["k_done"] == [3] and report["per_question"]["3"] == rows and "pipeline" not in report
    assert any(
        "edge vs gold first, paired over 2 questions" in line for line in experiment.sweep_lines(experiment.sweeps[0])
    )


def test_a_sweep_with_every_question_skipped_reports_no_comparison(tmp_path: Path) -> None:
    experiment = PositionExperiment(tmp_path, 1, [3], "model", ["edge"], ["first"])
    sweep = PositionSweep(3, [], [{"id": "q0", "question": "which letter", "reason": "0 answer-free"}], 0.1)
    experiment.add(sweep)
    assert experiment.results[0]["questions"] == 0 and experiment.paired == {}
    assert experiment.sweep_lines(sweep)[0].startswith("k=3: skipped 1 questions")
