"""The memory bench's pure text parts: scoring an answer, the scripted conversations and their selection."""

from __future__ import annotations

from eval.bench.memory import CONVERSATION_SCRIPTS, load_scripts, mentions


def test_limit_and_turns_cut_the_bundled_scripts() -> None:
    everything = load_scripts(CONVERSATION_SCRIPTS)
    cut = load_scripts(CONVERSATION_SCRIPTS, limit=2, turns=3)
    assert [s.name for s in cut] == [s.name for s in everything[:2]]
    assert all(len(s.turns) == 3 for s in cut)
    assert cut[0].turns == everything[0].turns[:3] and cut[0].markers == everything[0].markers


def test_mentions_matches_whole_words_ignoring_case() -> None:
    assert mentions("You have 30 days to ask.", ["30 days"])
    assert mentions("workspace WS_48213 is yours", ["ws_48213"])
    assert not mentions("I don't know.", ["no"])
    assert not mentions("130 days", ["30 days"])


def test_scripts_plant_a_constraint_and_a_fact_that_the_last_turns_check() -> None:
    scripts = load_scripts(CONVERSATION_SCRIPTS)
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
