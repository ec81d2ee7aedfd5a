"""The memory benchmark's pure text parts: scoring an answer, the scripted conversations."""

from __future__ import annotations

from pathlib import Path

from eval.memory_bench import load_scripts, mentions

SCRIPTS = Path(__file__).resolve().parents[2] / "eval" / "datasets" / "conversations"


def test_mentions_matches_whole_words_ignoring_case() -> None:
    assert mentions("You have 30 days to ask.", ["30 days"])
    assert mentions("workspace WS_48213 is yours", ["ws_48213"])
    assert not mentions("I don't know.", ["no"])
    assert not mentions("130 days", ["30 days"])


def test_scripts_plant_a_constraint_and_a_fact_that_the_last_turns_check() -> None:
    scripts = load_scripts(SCRIPTS)
    assert len(scripts) >= 5
    for script in scripts:
        assert len(script.turns) == 30, script.name
        checks = [(n, t.check) for n, t in enumerate(script.turns, start=1) if t.check]
        assert [n for n, _ in checks] == list(range(25, 31)), script.name
        assert {kind for _, kind in checks} == {"constraint", "fact"}
        assert all(t.expect_any for t in script.turns if t.check)
        # The fact's marker is said at turn 5 and nowhere before the checks.
        fact = script.markers["fact"]
        assert mentions(script.turns[4].user, fact)
        assert not any(mentions(t.user, fact) for t in script.turns[5:24]), script.name
        assert mentions(script.turns[1].user, script.markers["constraint"]), script.name
