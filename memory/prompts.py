"""The three prompts memory sends to the generator: update the summary, compress it, rewrite a follow-up."""

from __future__ import annotations

from collections.abc import Sequence

from memory.store import Turn

_ANSWER_CHARS = 600
"""Answers are cut to this length in prompts: the user's words carry the constraints, answers mostly repeat."""


def _exchanges(turns: Sequence[Turn]) -> str:
    lines = []
    for turn in turns:
        answer = turn.answer if len(turn.answer) <= _ANSWER_CHARS else turn.answer[:_ANSWER_CHARS] + " …"
        lines += [f"User: {turn.question}", f"Assistant: {answer}"]
    return "\n".join(lines)


def summary_prompt(summary: str, turns: Sequence[Turn], max_words: int) -> str:
    return (
        "You keep the running summary of a conversation between a user and a documentation assistant. "
        "Update the summary with the new exchanges. Keep: the user's constraints and preferences (region, plan, "
        "format), names, IDs and numbers the user gave, commitments made, and open questions. Drop small talk. "
        f"Write short bullet points, at most {max_words} words in all.\n\n"
        f"Current summary:\n{summary.strip() or '(empty)'}\n\n"
        f"New exchanges:\n{_exchanges(turns)}\n\n"
        "Updated summary:"
    )


def compress_prompt(summary: str, max_words: int) -> str:
    return (
        f"Shorten this conversation summary to at most {max_words} words. Keep every constraint, preference, "
        "name, ID and number the user gave; drop everything else. Write short bullet points.\n\n"
        f"Summary:\n{summary.strip()}\n\n"
        "Shorter summary:"
    )


def rewrite_prompt(question: str, summary: str, turns: Sequence[Turn]) -> str:
    context = []
    if summary.strip():
        context.append(f"Summary of earlier conversation:\n{summary.strip()}")
    if turns:
        context.append(f"Recent exchanges:\n{_exchanges(turns)}")
    return (
        "Rewrite the user's follow-up as one standalone question that can be understood without the "
        "conversation: resolve words like 'it', 'that' or 'and for ...', and add what the user said earlier that "
        "the question depends on (region, plan, product, error code). If it is already standalone, repeat it. "
        "Output only the question.\n\n"
        + "\n\n".join(context)
        + f"\n\nFollow-up: {question.strip()}\nStandalone question:"
    )


def clean_rewrite(text: str, question: str, max_chars: int) -> str:
    """The first non-empty line of the generator's answer, unquoted; the question itself if nothing usable came."""
    for line in text.strip().splitlines():
        line = line.strip().strip('"').strip("'").strip()
        if line.lower().startswith("standalone question:"):
            line = line.split(":", 1)[1].strip()
        if line:
            return line[:max_chars]
    return question
