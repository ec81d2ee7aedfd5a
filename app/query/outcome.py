"""What the generator returned, made safe to show: an empty reply or one cut at the token limit.

An empty stream becomes a plain statement (no citation can attach to it); a reply cut at ``max_tokens`` loses its
unfinished last sentence (which may hold half a citation marker) and says it was cut, rather than ending mid-word.
"""

from __future__ import annotations

import re
from typing import Any

EMPTY_ANSWER = "No answer was produced: the generator returned no text. Please ask again."
TRUNCATED_NOTE = "(The answer was cut at the length limit.)"
_SENTENCE_END = re.compile(r"[.!?](?:\s*\[\d{1,3}\])*(?=\s|$)")
_DANGLING_MARKER = re.compile(r"\s*\[\d{0,3}$")


def settle(text: str, finish_reason: str | None) -> tuple[str, dict[str, Any]]:
    """The answer to show and trace notes (``empty`` / ``truncated``) for a raw reply and its finish reason."""
    text = text.strip()
    if not text:
        return EMPTY_ANSWER, {"empty": True}
    if finish_reason != "length":
        return text, {}
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    kept = text[: ends[-1]] if ends else _DANGLING_MARKER.sub("", text)
    # the note on its own line: the citation check treats it as a sentence of its own, which no source supports
    return f"{kept.rstrip()}\n\n{TRUNCATED_NOTE}", {"truncated": True}
