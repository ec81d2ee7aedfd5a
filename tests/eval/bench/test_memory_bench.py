"""The memory bench's script selection: the bundled conversations, cut for smoke runs."""

from __future__ import annotations

from eval.bench.memory import CONVERSATION_SCRIPTS, load_scripts


def test_limit_and_turns_cut_the_bundled_scripts() -> None:
    everything = load_scripts(CONVERSATION_SCRIPTS)
    cut = load_scripts(CONVERSATION_SCRIPTS, limit=2, turns=3)
    assert [s.name for s in cut] == [s.name for s in everything[:2]]
    assert all(len(s.turns) == 3 for s in cut)
    assert cut[0].turns == everything[0].turns[:3] and cut[0].markers == everything[0].markers
