"""Evidence compression: compression ratio against answer accuracy retained and net latency (compression time
included); and the two speeds the ``auto`` rule weighs (vLLM prefill, compression), measured on this host.

Requests run one at a time, each variant right after the uncompressed baseline of the same question, so the
latencies compare like with like on a machine whose load changes; the ratio of medians is the number to read.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.experiments.common import (
    ANSWER_TOKENS,
    Progress,
    format_table,
    median_ms,
    no_progress,
    stage_entry,
    true_rate,
)
from eval.experiments.nq import NQ_COLLECTION, NQQuestion, Passage, answer_contained
from retrieval.protocols import AnswersQuestions, ChatModel

BASELINE = "off"


@dataclass(frozen=True)
class CompressionExperiment:
    """Per method (``off`` first): accuracy, its retention against ``off``, ratio, tokens and latency medians."""

    data: Path
    questions: int
    k: int
    rate: float
    generator: str
    compression_model: str
    results: list[dict[str, Any]]
    per_question: dict[str, list[dict[str, Any]]]

    def table(self) -> str:
        return format_table(self.results)

    def report(self) -> dict[str, Any]:
        return {
            "data": str(self.data),
            "questions": self.questions,
            "k": self.k,
            "rate": self.rate,
            "generator": self.generator,
            "compression_model": self.compression_model,
            "results": self.results,
            "per_question": self.per_question,
        }


def run_compression_experiment(
    pipeline: AnswersQuestions,
    questions: list[NQQuestion],
    methods: Sequence[str],
    *,
    data: Path,
    k: int,
    rate: float,
    generator: str,
    compression_model: str,
) -> CompressionExperiment:
    """Each question through the pipeline without compression and with each of ``methods`` at ``rate``."""
    variants = [BASELINE, *methods]
    base = {"context_top_k": k, "max_answer_tokens": ANSWER_TOKENS, "compression_rate": rate}
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for q in questions:
        for variant in variants:
            started = time.perf_counter()
            answer = pipeline.run(q.question, NQ_COLLECTION, None, options={**base, "compression": variant})
            ms = (time.perf_counter() - started) * 1000
            compress, generate = stage_entry(answer.trace, "compress"), stage_entry(answer.trace, "generate")
            runs[variant].append(
                {
                    "id": q.id,
                    "answer_contained": answer_contained(answer.text, q.answers),
                    "ms": round(ms),
                    "compress_ms": compress.get("compress_ms", 0.0),
                    "ratio": compress.get("ratio"),
                    "prompt_tokens": generate.get("prompt_tokens"),
                }
            )
    baseline_accuracy = true_rate([r["answer_contained"] for r in runs[BASELINE]]) or 0.0
    baseline_ms = median_ms([r["ms"] for r in runs[BASELINE]]) or 1.0
    rows = []
    for variant, results in runs.items():
        accuracy = true_rate([r["answer_contained"] for r in results])
        ratios = [r["ratio"] for r in results if r["ratio"]]
        rows.append(
            {
                "method": variant,
                "accuracy_contains": accuracy,
                "accuracy_contains_retention": (
                    round(accuracy / baseline_accuracy, 3) if baseline_accuracy and accuracy is not None else None
                ),
                "ratio_median": round(sorted(ratios)[len(ratios) // 2], 2) if ratios else 1.0,
                "prompt_tokens_median": median_ms([r["prompt_tokens"] for r in results if r["prompt_tokens"]]),
                "compress_ms_median": median_ms([r["compress_ms"] for r in results]),
                "latency_ms_median": median_ms([r["ms"] for r in results]),
                "latency_vs_off": round((median_ms([r["ms"] for r in results]) or 0) / baseline_ms, 3),
            }
        )
    return CompressionExperiment(data, len(questions), k, rate, generator, compression_model, rows, runs)


@dataclass(frozen=True)
class SpeedSamples:
    """Raw speed measurements: ``prefill`` pairs (short tokens, short s, long tokens, long s) of requests that
    differ only in added evidence, and the generator tokens the compressor read in ``compression_seconds``."""

    prefill: list[tuple[int, float, int, float]]
    compression_tokens: int
    compression_seconds: float

    @property
    def compression_tokens_per_s(self) -> float:
        return self.compression_tokens / self.compression_seconds


def measure_speeds(
    generator: ChatModel,
    system_prompt: str,
    count_tokens: Callable[[str], int],
    compress_ms: Callable[[str, str], float],
    questions: list[NQQuestion],
    passages: dict[str, Passage],
    repeats: int,
    on_progress: Progress = no_progress,
) -> SpeedSamples:
    """Prefill speed: two prompts (system text, question; the same with ~10 passages), each behind a fresh nonce so
    the prefix cache cannot help, differ in time by the prefill of the passages alone. Compression speed: the
    compressor (``compress_ms(text, question)``, its milliseconds) reads passages with the question, one at a time.
    Both in generator tokens (``count_tokens``)."""
    texts = [f"{p.title}\n{p.text}" for p in passages.values()]

    def timed(user: str) -> tuple[int, float]:
        messages = [
            {"role": "system", "content": f"[{uuid.uuid4().hex}] {system_prompt}"},
            {"role": "user", "content": user},
        ]
        started = time.perf_counter()
        completion = generator.chat(messages, max_tokens=1)
        return completion.prompt_tokens, time.perf_counter() - started

    samples: list[tuple[int, float, int, float]] = []
    for i in range(repeats):
        question = questions[i % len(questions)].question
        evidence = "\n\n".join(texts[i * 10 : i * 10 + 10])
        short, long = timed(question), timed(f"{evidence}\n\nQuestion: {question}")
        samples.append((*short, *long))
        on_progress(f"prefill {i + 1}/{repeats}: {short[0]} tokens {short[1]:.2f} s, {long[0]} tokens {long[1]:.2f} s")
    read, spent = 0, 0.0
    for i in range(repeats * 3):
        text = texts[i]
        ms = compress_ms(text, questions[i % len(questions)].question)
        read, spent = read + count_tokens(text), spent + ms / 1000
    return SpeedSamples(samples, read, spent)
