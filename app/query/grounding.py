"""Is the answer grounded? Sentences with and without a valid citation, counted after the citation check.

A small model can answer fluently from its own weights ("The incident commander should be paged…") with no
source behind it. After ``app.query.citation_check`` has removed invalid markers and attributed what the sources
support, a sentence still without a marker is a claim no source backs. An answer in which *no* sentence is
supported is not presented as grounded: by default it is returned flagged (``grounded: false`` and a warning that
CLI, API and UI show), or, with ``ungrounded_answers = "abstain"``, replaced by the abstention text and the closest
sources. A refusal ("I don't know…") claims nothing, so it is never flagged.

Flagging is the default because the check is lexical: a correct answer that paraphrases its source may find no
marker, and hiding it would cost right answers; the flag tells the reader to check the sources instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.query.citation_check import MARKER, SENTENCE_BREAK
from app.query.outcome import EMPTY_ANSWER, TRUNCATED_NOTE
from eval.answer_metrics import abstained

UNGROUNDED_WARNING = (
    "Not grounded: no sentence of this answer is supported by a cited source. It may come from the model's own "
    "knowledge; check the sources before relying on it."
)
_WORDS = re.compile(r"[^\W_]{2,}")
_FENCE = "```"


@dataclass(frozen=True)
class Grounding:
    """Claim sentences of an answer and how many carry a valid citation marker."""

    sentences: int
    supported: int
    refusal: bool

    @property
    def unsupported(self) -> int:
        return 0 if self.refusal else self.sentences - self.supported

    @property
    def grounded(self) -> bool:
        """A refusal, an answer with no claim, or one with at least one supported sentence."""
        return self.refusal or self.sentences == 0 or self.supported > 0

    def as_details(self) -> dict[str, object]:
        return {
            "sentences": self.sentences,
            "supported_sentences": self.supported,
            "unsupported_sentences": self.unsupported,
            "grounded": self.grounded,
            "refusal": self.refusal,
        }


def claim_sentences(answer: str) -> list[str]:
    """The sentences that state something: not code (fenced blocks), not ragline's own notes, not bare markers."""
    sentences: list[str] = []
    in_code = False
    for piece in SENTENCE_BREAK.split(answer):
        stripped = piece.strip()
        if stripped.startswith(_FENCE):
            in_code = not in_code if stripped.count(_FENCE) % 2 else in_code
            continue
        if in_code or stripped in (TRUNCATED_NOTE, EMPTY_ANSWER):
            continue
        if _WORDS.search(MARKER.sub("", stripped)):
            sentences.append(stripped)
    return sentences


def assess(answer: str) -> Grounding:
    """Count the answer's claim sentences and those with a citation marker (markers already checked valid)."""
    sentences = claim_sentences(answer)
    supported = sum(1 for sentence in sentences if MARKER.search(sentence))
    return Grounding(sentences=len(sentences), supported=supported, refusal=abstained(answer))


def withdrawn(trace: dict[str, object]) -> bool:
    """True when the grounding check replaced an unsupported draft by the abstention text (the ``abstain`` policy):
    a streaming client has already shown the draft and must now show the final text instead."""
    stages = trace.get("stages")
    return isinstance(stages, list) and any(
        isinstance(s, dict) and s.get("stage") == "citations" and s.get("action") == "abstained" for s in stages
    )
