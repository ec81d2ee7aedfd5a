"""``ragline bench llm``: how long a vLLM server takes to read a RAG-sized prompt and to write an answer.

A RAG request is mostly prompt (a few thousand tokens of evidence, a short answer), so prefill time, not decoding
speed, decides how soon an answer comes. Each request is streamed: the time to its first token is the prefill, the
rest over the tokens after the first is the decode rate. Each starts with a unique line so the prefix cache cannot
serve it; ``ignore_eos`` makes every answer exactly the requested length.
Servers are measured one after another in the same process; ratios are against the first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import httpx

from eval.bench.common import percentiles, speedup

EVIDENCE_LINE = (
    "Source {i}: the refund policy of region {i} allows {days} days from the date of a charge, and the support "
    "desk of that region answers a ticket within {hours} hours on working days."
)


def rag_prompt(prompt_tokens: int, salt: str) -> str:
    """A prompt of about ``prompt_tokens`` tokens (about 43 Qwen tokens per evidence line), unique first line."""
    lines = [EVIDENCE_LINE.format(i=i, days=i % 30 + 1, hours=i % 5 + 1) for i in range(max(1, prompt_tokens // 43))]
    return f"Request {salt}.\n" + "\n".join(lines) + "\nQuestion: how many days does region 7 allow?"


@dataclass(frozen=True)
class Timing:
    """One streamed request: seconds to the first token (the prefill), seconds in all, and the token counts."""

    first_token_s: float
    total_s: float
    prompt_tokens: int
    completion_tokens: int

    @property
    def decode_ms_per_token(self) -> float:
        """Time per generated token after the first."""
        return (self.total_s - self.first_token_s) * 1000 / max(1, self.completion_tokens - 1)


def timed_request(base_url: str, model: str, prompt: str, max_tokens: int, timeout_s: float) -> Timing:
    """One streamed chat completion of exactly ``max_tokens`` tokens: time to the first token and to the end."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first: float | None = None
    usage: dict[str, Any] = {}
    with httpx.stream("POST", f"{base_url.rstrip('/')}/chat/completions", json=body, timeout=timeout_s) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line.removeprefix("data: "))
            if first is None and any((c.get("delta") or {}).get("content") for c in event.get("choices") or []):
                first = time.perf_counter() - started
            usage = event.get("usage") or usage
    total = time.perf_counter() - started
    if not usage:
        raise ValueError("the server's stream ended without token usage (stream_options.include_usage)")
    return Timing(first or total, total, int(usage["prompt_tokens"]), int(usage["completion_tokens"]))


@dataclass
class ServerRun:
    """One server's streamed requests."""

    label: str
    timings: list[Timing] = field(default_factory=list)

    @property
    def first_token_s(self) -> float:
        return median(t.first_token_s for t in self.timings)

    @property
    def total_s(self) -> float:
        return median(t.total_s for t in self.timings)

    @property
    def decode_ms_per_token(self) -> float:
        return median(t.decode_ms_per_token for t in self.timings)

    def as_report(self) -> dict[str, Any]:
        return {
            "first_token_s": percentiles([t.first_token_s for t in self.timings]),
            "total_s": percentiles([t.total_s for t in self.timings]),
            "decode_ms_per_token": round(self.decode_ms_per_token, 2),
            "prompt_tokens": median(t.prompt_tokens for t in self.timings),
            "completion_tokens": median(t.completion_tokens for t in self.timings),
        }


def measure_server(
    label: str, base_url: str, model: str, *, prompt_tokens: int, answer_tokens: int, requests: int, timeout_s: float
) -> ServerRun:
    """Time ``requests`` streamed requests against one running server, after a short warm-up request."""
    run = ServerRun(label)
    timed_request(base_url, model, rag_prompt(64, f"{label}-warm-up"), 2, timeout_s)
    for index in range(requests):
        prompt = rag_prompt(prompt_tokens, f"{label}-{index}")
        run.timings.append(timed_request(base_url, model, prompt, answer_tokens, timeout_s))
    return run


@dataclass(frozen=True)
class LLMBenchResult:
    """Every server's run, the first being the baseline of the ratios."""

    model: str
    runs: Sequence[ServerRun]
    config: Mapping[str, Any]

    def as_report(self) -> dict[str, Any]:
        baseline = self.runs[0]
        return {
            "bench": "llm",
            "model": self.model,
            "config": dict(self.config),
            "baseline": baseline.label,
            "runs": {
                run.label: {
                    **run.as_report(),
                    "first_token_speedup": round(speedup(baseline.first_token_s, run.first_token_s), 2),
                    "total_speedup": round(speedup(baseline.total_s, run.total_s), 2),
                }
                for run in self.runs
            },
        }


def llm_lines(result: LLMBenchResult) -> list[str]:
    """The printed table: medians per server and the speed-up against the first (same run)."""
    report = result.as_report()
    config = report["config"]
    lines = [
        f"\n{result.model}: {config['requests']} requests per row, ~{config['prompt_tokens']}-token prompts, "
        f"{config['answer_tokens']}-token answers (x = speed-up vs {report['baseline']}, same run)",
        f"  {'server':12} {'first token s (x)':>20} {'answer s (x)':>18} {'decode ms/token':>16}",
    ]
    for label, run in report["runs"].items():
        lines.append(
            f"  {label:12} {run['first_token_s']['p50']:>12.2f} ({run['first_token_speedup']:.2f}x)"
            f" {run['total_s']['p50']:>10.2f} ({run['total_speedup']:.2f}x) {run['decode_ms_per_token']:>16.1f}"
        )
    return lines
