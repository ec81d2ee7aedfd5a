"""``ragline bench memory``: 30-turn scripted conversations with tiered memory vs keep-everything history."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from app.settings import get_settings

DEFAULT_SCRIPTS = Path(__file__).resolve().parent.parent / "eval" / "datasets" / "conversations"


def bench_memory(
    scripts: Annotated[Path, typer.Option(help="Folder of conversation scripts (*.json).")] = DEFAULT_SCRIPTS,
    limit: Annotated[int | None, typer.Option(min=1, help="Run only the first N scripts.")] = None,
    turns: Annotated[
        int | None, typer.Option(min=1, help="Cut every script to its first N turns (smoke runs).")
    ] = None,
    max_answer_tokens: Annotated[int, typer.Option(min=8, help="Answer length, both modes.")] = 96,
    context_top_k: Annotated[int, typer.Option(min=1, help="Evidence chunks per prompt, both modes.")] = 4,
    concurrency: Annotated[int, typer.Option(min=1, help="Conversations in flight at once (vLLM batches).")] = 10,
    mode: Annotated[list[str] | None, typer.Option(help="memory and/or keep_everything (default both).")] = None,
) -> None:
    """Pass rate on turns 25-30 (constraint from turn 2, fact from turn 5) and prompt tokens per turn, both modes."""
    from dataclasses import replace

    from app.cli.common import configure_logging as _configure_logging
    from app.cli.common import fail as _fail
    from app.ingestion import run_ingest
    from app.llm import LLMUnavailableError
    from app.memory_wiring import MemoryDisabledError, build_memory_service
    from app.query.pipeline import Pipeline
    from app.resources import ModelMissingError, Resources
    from eval.memory_bench import MODES, load_scripts, run_benchmark
    from ingest.samples import SAMPLE_COLLECTION, sample_corpus_dir

    _configure_logging()
    settings = get_settings()
    try:
        loaded = load_scripts(scripts)[:limit]
        if turns:
            loaded = [replace(s, turns=s.turns[:turns]) for s in loaded]
        resources = Resources(settings)
        if any(s.collection == SAMPLE_COLLECTION for s in loaded) and (
            SAMPLE_COLLECTION not in resources.index.collections()
        ):
            typer.echo("ingesting the sample corpus …")
            run_ingest(settings, sample_corpus_dir(), SAMPLE_COLLECTION, prune=False, meta={}, chunker="fixed")
        pipeline = Pipeline(resources)
        service = build_memory_service(resources, pipeline)
        resources.generator.served_models()  # fail now, with the fix, if vLLM is not up
    except (FileNotFoundError, ModelMissingError, MemoryDisabledError, LLMUnavailableError, ValueError) as exc:
        raise _fail(str(exc)) from None
    options = {"max_answer_tokens": max_answer_tokens, "context_top_k": context_top_k}
    # Keep-everything must not be cut by the prompt budget: give it the whole model context.
    baseline = {**options, "context_budget_tokens": settings.vllm_max_model_len}
    out = settings.reports_dir / f"bench-memory-{time.strftime('%Y%m%d-%H%M%S')}.json"
    typer.echo(f"{len(loaded)} scripts × {len(loaded[0].turns)} turns, report (updated each turn): {out}")
    report = run_benchmark(
        service,
        pipeline,
        loaded,
        memory_options=options,
        baseline_options=baseline,
        out=out,
        modes=mode or MODES,
        concurrency=concurrency,
    )
    summary = report["summary"]
    rows = [
        ("scripts done", "scripts_done"),
        ("turns done", "turns_done"),
        ("errors", "errors"),
        ("pass rate (turns 25-30)", "pass_rate"),
        ("  constraint (turn 2)", "pass_rate_constraint"),
        ("  fact (turn 5)", "pass_rate_fact"),
        ("retained in prompt", "retention_rate"),
        ("prompt tokens, turns 1-10", "prompt_tokens_turns_1_10"),
        ("prompt tokens, turns 21-30", "prompt_tokens_turns_21_30"),
        ("prompt tokens, max", "prompt_tokens_max"),
        ("seconds per turn (median)", "seconds_per_turn_median"),
    ]
    typer.echo(f"\n{'':30}{'memory':>16}{'keep_everything':>18}")
    for label, key in rows:
        cells = [summary[m].get(key) for m in MODES]
        typer.echo(
            f"{label:30}" + "".join(f"{'-' if c is None else c!s:>{w}}" for c, w in zip(cells, (16, 18), strict=True))
        )
    typer.echo(f"\nreport: {out}")
