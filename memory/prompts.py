"""The three prompts memory sends to the generator: update the summary, compress it, rewrite a follow-up."""

from __future__ import annotations

import re
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


_REWRITE_EXAMPLES = (
    "Example\nConversation:\nUser: What is the refund window for EU customers?\n"
    "Follow-up: and for UK customers?\nStandalone question: What is the refund window for UK customers?\n\n"
    "Example\nConversation:\nUser: What does error ERR-4012 mean?\n"
    "Follow-up: How do I fix it?\nStandalone question: How do I fix error ERR-4012?\n\n"
    "Example\nConversation:\nUser: What does error ERR-4012 mean?\n"
    "Follow-up: Which HTTP header carries the webhook signature?\n"
    "Standalone question: Which HTTP header carries the webhook signature?\n\n"
)
"""Few-shot examples: a 0.5B generator told only in words tends to repeat the previous question instead."""


def rewrite_prompt(question: str, summary: str, turns: Sequence[Turn]) -> str:
    context = []
    if summary.strip():
        context.append(f"Summary: {summary.strip()}")
    context += [f"User: {t.question}" for t in turns]
    return (
        "Rewrite the follow-up as one standalone question for a document search. Keep its words and meaning; "
        "only add what it refers to in the conversation (a region, plan, product or error code). If the "
        "follow-up is already a complete question, copy it unchanged. Output only the question.\n\n"
        + _REWRITE_EXAMPLES
        + "Now\nConversation:\n"
        + "\n".join(context)
        + f"\nFollow-up: {question.strip()}\nStandalone question:"
    )


_WORD = re.compile(r"[a-z0-9][a-z0-9_-]*")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "are",
        "was",
        "were",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "why",
        "when",
        "where",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "with",
        "from",
        "that",
        "this",
        "there",
        "their",
        "they",
        "them",
        "our",
        "ours",
        "you",
        "your",
        "about",
        "into",
        "than",
        "then",
        "also",
        "just",
        "have",
        "has",
        "had",
        "not",
        "any",
        "all",
        "its",
        "it's",
    ]
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _STOP}


def keeps_question(rewrite: str, question: str, share: float = 0.5) -> bool:
    """Whether ``rewrite`` keeps at least ``share`` of the question's content words: a rewrite that drops them
    answers a different question (small generators repeat the previous one), and retrieval would follow it."""
    words = content_words(question)
    return not words or len(words & content_words(rewrite)) / len(words) >= share


def clean_rewrite(text: str, question: str, max_chars: int) -> str:
    """The first non-empty line of the generator's answer, unquoted; the question itself if nothing usable came."""
    for line in text.strip().splitlines():
        line = line.strip().strip('"').strip("'").strip()
        if line.lower().startswith("standalone question:"):
            line = line.split(":", 1)[1].strip()
        if line:
            return line[:max_chars]
    return question
