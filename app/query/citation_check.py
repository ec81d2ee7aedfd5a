"""Citation checking and attribution.

Every ``[n]`` the model writes is mapped to the chunk shown as source n; numbers that point at nothing are removed
and reported. Small models often answer correctly but forget the markers, so each answer sentence left without a
marker is attributed to the source that supports it best (content words and numbers of the sentence found in the
source) and the marker is added. Each citation says whether the model gave it or the checker attributed it, so
nothing is passed off as the model's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from retrieval.types import Hit

MARKER = re.compile(r"\s?\[(\d{1,3})\]")
"""A citation marker ``[n]`` (with the space before it)."""
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(])|\n+")
"""Where an answer splits into sentences: after end punctuation before a capital or digit, and at newlines."""
_WORD = re.compile(r"[a-z0-9][a-z0-9_\-./]*[a-z0-9]|[a-z0-9]", re.IGNORECASE)
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "there",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "they",
        "them",
        "than",
        "then",
        "so",
        "not",
        "no",
        "yes",
        "may",
        "must",
        "should",
        "would",
        "could",
        "also",
        "any",
        "all",
        "each",
        "per",
        "our",
        "we",
        "us",
    ]
)
MIN_SUPPORT = 0.5
"""Share of a sentence's content words that a source must contain to be attributed to it."""


@dataclass(frozen=True)
class CitationCheck:
    answer: str
    citations: list[dict[str, Any]]
    invalid: list[int]
    attributed: list[int]


def _stem(word: str) -> str:
    """A plural "s" only: enough to match "signatures" with "signature" without merging unrelated words."""
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _content_words(text: str) -> set[str]:
    words = {w.lower().strip(".-/") for w in _WORD.findall(text)} - _STOPWORDS
    return {_stem(w) for w in words}


def _support(sentence_words: set[str], source_words: set[str]) -> float:
    if not sentence_words:
        return 0.0
    return len(sentence_words & source_words) / len(sentence_words)


def _attribute(sentence: str, sources: list[set[str]]) -> int | None:
    """1-based number of the best-supporting source, or None when none clears ``MIN_SUPPORT``."""
    words = _content_words(sentence)
    if len(words) < 2:
        return None
    numbers = {w for w in words if any(ch.isdigit() for ch in w)}
    best, best_score = None, MIN_SUPPORT
    for number, source in enumerate(sources, start=1):
        if numbers and not numbers <= source:
            continue  # a sentence stating a number is supported only by a source holding that number
        score = _support(words, source)
        if score > best_score + 1e-9:
            best, best_score = number, score
    return best


def check_citations(answer: str, context: list[Hit]) -> CitationCheck:
    sources = [_content_words(hit.chunk.text + " " + str(hit.chunk.metadata.get("title", ""))) for hit in context]
    invalid = sorted({int(n) for n in MARKER.findall(answer) if not 1 <= int(n) <= len(context)})
    answer = MARKER.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= len(context) else "", answer)

    attributed: list[int] = []
    pieces = []
    for sentence in SENTENCE_BREAK.split(answer):
        if sentence and not MARKER.search(sentence) and not sentence.lstrip().startswith("```"):
            number = _attribute(sentence, sources)
            if number is not None:
                sentence = _append_marker(sentence, number)
                attributed.append(number)
        pieces.append(sentence)
    answer = _join(answer, pieces)

    order: list[int] = []
    for n in (int(n) for n in MARKER.findall(answer)):
        if n not in order:
            order.append(n)
    citations = [
        {
            "id": n,
            "chunk_id": context[n - 1].chunk.id,
            "doc_id": context[n - 1].chunk.doc_id,
            "source": context[n - 1].chunk.metadata.get("source", context[n - 1].chunk.doc_id),
            "title": context[n - 1].chunk.metadata.get("title"),
            "text": context[n - 1].chunk.text,
            "origin": "attributed" if n in attributed else "model",
        }
        for n in order
    ]
    return CitationCheck(answer=answer, citations=citations, invalid=invalid, attributed=sorted(set(attributed)))


def _append_marker(sentence: str, number: int) -> str:
    stripped = sentence.rstrip()
    trail = sentence[len(stripped) :]
    if stripped and stripped[-1] in ".!?":
        return f"{stripped[:-1]} [{number}]{stripped[-1]}{trail}"
    return f"{stripped} [{number}]{trail}"


def _join(original: str, pieces: list[str]) -> str:
    """Re-join sentences with the separators the split removed (space or the original newlines)."""
    separators = SENTENCE_BREAK.findall(original)
    out = []
    for i, piece in enumerate(pieces):
        out.append(piece)
        if i < len(separators):
            out.append(separators[i])
    return "".join(out)
