"""``ragline bench llm``: how long a vLLM server takes to read a RAG-sized prompt and to write an answer.

A RAG request is mostly prompt (a few thousand tokens of evidence, a short answer), so prefill time, not decoding
speed, decides how soon an answer comes. Each request starts with a unique line so the prefix cache cannot serve
it; ``ignore_eos`` makes every answer exactly the requested length, so decode time per token is comparable.
Servers are measured one after another in the same process; ratios are against the first.
"""

from __future__ import annotations

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
    """A prompt of about ``prompt_tokens`` tokens (about 32 per evidence line) with a unique first line."""
    lines = [EVIDENCE_LINE.format(i=i, days=i % 30 + 1, hours=i % 5 + 1) for i in range(max(1, prompt_tokens // 32))]
    return f"Request {salt}.\n" + "\n".join(lines) + "\nQuestion: how many days does region 7 allow?"


@dataclass(frozen=True)
class Timing:
    """One request: wall seconds and the server's token counts."""

    seconds: float
    prompt_tokens: int
    completion_tokens: int


def timed_request(base_url: str, model: str, prompt: str, max_tokens: int, timeout_s: float) -> Timing:
    """One non-streamed chat completion of exactly ``max_tokens`` tokens, timed end to end."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
    }
    started = time.perf_counter()
    response = httpx.post(f"{base_url.rstrip('/')}/chat/completions", json=body, timeout=timeout_s)
    response.raise_for_status()
    usage = response.json()["usage"]
    return Timing(time.perf_counter() - started, int(usage["prompt_tokens"]), int(usage["completion_tokens"]))


@dataclass
class ServerRun:
    """One server's timings: prefill-only requests (one output token) and full requests."""

    label: str
    prefill: list[Timing] = field(default_factory=list)
    full: list[Timing] = field(default_factory=list)

    @property
    def prefill_s(self) -> float:
        return median(t.seconds for t in self.prefill)

    @property
    def full_s(self) -> float:
        return median(t.seconds for t in self.full)

    @property
    def decode_ms_per_token(self) -> float:
        """Median extra time per generated token beyond the first, from the full minus the prefill requests."""
        extra_tokens = max(1, median(t.completion_tokens for t in self.full) - 1)
        return (self.full_s - self.prefill_s) * 1000 / extra_tokens

    def as_report(self) -> dict[str, Any]:
        return {
            "prefill_s": percentiles([t.seconds for t in self.prefill]),
            "full_s": percentiles([t.seconds for t in self.full]),
            "decode_ms_per_token": round(self.decode_ms_per_token, 2),
            "prompt_tokens": median(t.prompt_tokens for t in self.prefill),
            "completion_tokens": median(t.completion_tokens for t in self.full),
        }


def measure_server(
    label: str, base_url: str, model: str, *, prompt_tokens: int, answer_tokens: int, requests: int, timeout_s: float
) -> ServerRun:
    """Time ``requests`` prefill-only and ``requests`` full requests against one running server (after a warm-up)."""
    run = ServerRun(label)
    timed_request(base_url, model, rag_prompt(64, f"{label}-warm-up"), 2, timeout_s)
    for index in range(requests):
        run.prefill.append(timed_request(base_url, model, rag_prompt(prompt_tokens, f"{label}-p{index}"), 1, timeout_s))
        prompt = rag_prompt(prompt_tokens, f"{label}-f{index}")
        run.full.append(timed_request(base_url, model, prompt, answer_tokens, timeout_s))
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
                    "prefill_speedup": round(speedup(baseline.prefill_s, run.prefill_s), 2),
                    "full_speedup": round(speedup(baseline.full_s, run.full_s), 2),
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
        f"  {'server':12} {'prefill s (x)':>16} {'answer s (x)':>16} {'decode ms/token':>16}",
    ]
    for label, run in report["runs"].items():
        lines.append(
            f"  {label:12} {run['prefill_s']['p50']:>9.2f} ({run['prefill_speedup']:.2f}x)"
            f" {run['full_s']['p50']:>9.2f} ({run['full_speedup']:.2f}x) {run['decode_ms_per_token']:>16.1f}"
        )
    return lines
