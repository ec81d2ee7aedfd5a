"""``ragline bench llm``'s measuring against the session's real vLLM server, and its flag checks."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli.root import app
from app.vllm_server import VLLMServer
from eval.bench.llm import LLMBenchResult, llm_lines, measure_server, rag_prompt


def test_prompts_are_unique_and_about_the_asked_length() -> None:
    first, second = rag_prompt(640, "a"), rag_prompt(640, "b")
    assert first != second and first.splitlines()[1:] == second.splitlines()[1:]
    assert len(first.splitlines()) == 640 // 43 + 2


@pytest.mark.vllm
def test_a_server_is_timed_and_reported_against_the_first(vllm_server: VLLMServer) -> None:
    url, name = vllm_server.base_url, vllm_server.served_name
    sizes = {"prompt_tokens": 96, "answer_tokens": 4, "requests": 1}
    runs = [measure_server(label, url, name, **sizes, timeout_s=600) for label in ("first", "second")]
    for run in runs:
        timing = run.timings[0]
        assert timing.completion_tokens == 4 and timing.prompt_tokens > 64  # ignore_eos: exactly the asked length
        assert 0 < timing.first_token_s <= timing.total_s and timing.decode_ms_per_token >= 0
    report = LLMBenchResult("m", runs, sizes).as_report()
    assert report["baseline"] == "first" and report["runs"]["first"]["first_token_speedup"] == 1.0
    assert set(report["runs"]["second"]) >= {"first_token_s", "total_s", "decode_ms_per_token", "total_speedup"}
    lines = llm_lines(LLMBenchResult("m", runs, sizes))
    assert any(line.strip().startswith("second") and "x)" in line for line in lines)


def test_unknown_dtypes_and_overlong_prompts_are_refused_before_any_server_starts() -> None:
    result = CliRunner().invoke(app, ["bench", "llm", "--dtypes", "bfloat16,int3"])
    assert result.exit_code == 2 and "--dtypes takes auto, bfloat16, float32, float16" in result.output
    result = CliRunner().invoke(app, ["bench", "llm", "--prompt-tokens", "9000"])
    assert result.exit_code == 2 and "vllm_max_model_len" in result.output
