"""What ingestion needs from a language model, declared here so ``ingest`` never imports ``app``.

``app`` hands in the vLLM-backed implementation (``app.text_generator.VLLMTextGenerator``); tests and tools may
hand in any object with the same method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TextGenerationError(RuntimeError):
    """One prompt of a batch failed; ``index`` is its position in the batch."""

    def __init__(self, index: int, total: int, cause: BaseException) -> None:
        super().__init__(f"prompt {index} of a batch of {total} failed: {type(cause).__name__}: {cause}")
        self.index = index
        self.total = total


class TextGenerator(Protocol):
    def complete(self, prompts: Sequence[str], *, max_tokens: int) -> list[str]:
        """Complete every prompt (as one user message each) and return the answers in the prompts' order.

        Implementations send the prompts concurrently, so vLLM's continuous batching pays: a level of a summary
        tree costs about one generation's latency, not one per prompt. If any prompt fails, the call raises
        ``TextGenerationError`` naming that prompt's index.
        """
        ...
