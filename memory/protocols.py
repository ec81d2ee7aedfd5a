"""What memory needs from the rest of the system, declared here so ``memory`` never imports ``app``.

``app`` hands in the vLLM-backed text generator, the query pipeline and a token counter built on the generator's
own tokenizer; tests may hand in any object with the same methods (a fake only for a fault that cannot be caused).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

Message = dict[str, str]


class TextGenerator(Protocol):
    def complete(self, prompts: Sequence[str], *, max_tokens: int) -> list[str]:
        """Complete each prompt (one user message each); raise if any fails."""
        ...


class TokenCounter(Protocol):
    def count_messages(self, messages: Sequence[Message]) -> int:
        """Tokens these chat messages take in the generator's prompt, template markers included."""
        ...

    def count_text(self, text: str) -> int: ...


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray: ...


class AnswerLike(Protocol):
    text: str
    trace: dict[str, Any]


class AnswersQuestions(Protocol):
    """The query pipeline, as memory uses it: ``history`` is the H term, ``search_query`` what retrieval uses."""

    def run(
        self,
        question: str,
        collection: str,
        filters: Mapping[str, Any] | None = None,
        *,
        history: list[Message] | None = None,
        search_query: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Any: ...

    def stream(
        self,
        question: str,
        collection: str,
        filters: Mapping[str, Any] | None = None,
        *,
        history: list[Message] | None = None,
        search_query: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[Any]: ...
