"""The vLLM-backed ``retrieval.protocols.TextGenerator`` that ``app`` hands to ingestion (RAPTOR summaries), memory
(session summaries) and reranker training (synthetic queries)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from app.llm import OpenAICompatibleGenerator
from retrieval.protocols import TextGenerationError


class VLLMTextGenerator:
    """Sends a batch of prompts concurrently (up to ``concurrency`` in flight) and returns answers in order.

    ``calls`` counts the chat requests sent and ``batches`` the ``complete`` calls, for benchmarks and notes.
    """

    def __init__(self, generator: OpenAICompatibleGenerator, concurrency: int = 32) -> None:
        if concurrency <= 0:
            raise ValueError(f"concurrency must be positive, got {concurrency}")
        self.generator = generator
        self.concurrency = concurrency
        self.calls = 0
        self.batches = 0
        self._lock = threading.Lock()

    def _one(self, prompt: str, max_tokens: int) -> str:
        with self._lock:
            self.calls += 1
        return self.generator.chat([{"role": "user", "content": prompt}], max_tokens=max_tokens).text

    def complete(self, prompts: Sequence[str], *, max_tokens: int) -> list[str]:
        if max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        with self._lock:
            self.batches += 1
        if not prompts:
            return []
        executor = ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts)), thread_name_prefix="llm")
        try:
            futures: list[Future[str]] = [executor.submit(self._one, prompt, max_tokens) for prompt in prompts]
            answers: list[str] = []
            for index, future in enumerate(futures):
                try:
                    answers.append(future.result())
                except Exception as exc:
                    raise TextGenerationError(index, len(prompts), exc) from exc
            return answers
        finally:
            # On a failure, prompts not yet sent are dropped rather than sent for nothing.
            executor.shutdown(wait=True, cancel_futures=True)
