"""Time to first token with and without a vLLM prefix-cache hit, in one process, one request at a time.

The prompt layout puts the stable part first; here that part is the system text and a history turn carrying
passages. Cold: the prefix starts with a fresh nonce, so vLLM has never seen it. Warm: the same prefix as the
previous request, with a different question at the end, as in a follow-up turn.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from eval.experiments.common import format_table, median_ms
from eval.experiments.nq import NQQuestion, Passage
from retrieval.protocols import StreamingChatModel


@dataclass(frozen=True)
class PrefixCacheExperiment:
    """Cold and warm times to first token (ms) and the prompt's length in tokens."""

    prompt_tokens: int
    repeats: int
    cold_ms: list[float]
    warm_ms: list[float]

    @property
    def results(self) -> list[dict[str, Any]]:
        return [
            {"request": "cold (prefix unseen)", "ttft_ms_median": median_ms(self.cold_ms)},
            {"request": "warm (prefix cached)", "ttft_ms_median": median_ms(self.warm_ms)},
        ]

    @property
    def cold_over_warm(self) -> float:
        return round((median_ms(self.cold_ms) or 0) / (median_ms(self.warm_ms) or 1), 2)

    def lines(self) -> list[str]:
        return [
            format_table(self.results),
            f"prompt tokens {self.prompt_tokens}; cold/warm TTFT ratio {self.cold_over_warm}",
        ]

    def report(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "repeats": self.repeats,
            "cold_ms": [round(v, 1) for v in self.cold_ms],
            "warm_ms": [round(v, 1) for v in self.warm_ms],
            "results": self.results,
            "cold_over_warm": self.cold_over_warm,
        }


def run_prefix_cache_experiment(
    generator: StreamingChatModel,
    system_prompt: str,
    questions: list[NQQuestion],
    passages: dict[str, Passage],
    *,
    repeats: int,
    passages_in_prefix: int,
) -> PrefixCacheExperiment:
    """``repeats`` pairs: a cold request on a fresh prefix, then a warm one on the same prefix with the next
    question (``2 * repeats`` questions are needed)."""
    if len(questions) < 2 * repeats:
        raise ValueError(f"{repeats} repeats need {2 * repeats} questions, got {len(questions)}")
    documents = "\n\n".join(f"{p.title}\n{p.text}" for p in list(passages.values())[:passages_in_prefix])

    def ttft(messages: list[dict[str, str]]) -> float:
        started = time.perf_counter()
        for _ in generator.stream(messages, max_tokens=1):
            break
        return (time.perf_counter() - started) * 1000

    def prefix() -> list[dict[str, str]]:
        return [
            {"role": "system", "content": f"[session {uuid.uuid4().hex}] {system_prompt}"},
            {"role": "user", "content": f"Here are documents for this conversation:\n{documents}"},
            {"role": "assistant", "content": "Thank you, I have read them."},
        ]

    cold, warm = [], []
    for i in range(repeats):
        shared = prefix()
        cold.append(ttft([*shared, {"role": "user", "content": questions[2 * i].question}]))
        warm.append(ttft([*shared, {"role": "user", "content": questions[2 * i + 1].question}]))
    last = [*shared, {"role": "user", "content": questions[0].question}]
    prompt_tokens = generator.chat(last, max_tokens=1).prompt_tokens
    return PrefixCacheExperiment(prompt_tokens, repeats, cold, warm)
