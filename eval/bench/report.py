"""The printed tables of the benchmarks: each bench's typed result rendered as the lines ``ragline bench`` prints.

Rendering lives apart from measuring so a bench can be run from a notebook or a test without printing, and so the
table layout can change without touching what is measured."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eval.bench.common import speedup
from eval.bench.ingest import IngestBenchResult, IngestEvent, RaptorBuild, Throughput
from eval.bench.memory import MODES
from eval.bench.padding import PaddingRatios
from eval.bench.rerank import HYBRID, RerankBenchResult
from eval.bench.retrieval import RetrievalBenchResult, ScaleRun


def retrieval_lines(result: RetrievalBenchResult) -> list[str]:
    """Quality and latency on the real corpus, query embedding per engine, and latency per synthetic size."""
    lines = [
        f"\nreal corpus ({Path(result.corpus).name} {result.split}, {result.quality_queries} queries): "
        "nDCG@10 and latency p50 ms"
    ]
    for label, score in result.ndcg_at_10.items():
        lines.append(f"  {label:18} nDCG@10 {score:.4f}   p50 {result.real_corpus_latency_ms[label]['p50']:.1f} ms")
    lines.append(f"rank-bm25 index build on the real corpus: {result.reference_build_s:.1f} s")
    embed_ms = result.embed_query_ms_by_backend
    lines.append(
        f"\none query's embedding, {result.config.queries} queries, ms p50 / p95 (x = speed-up vs torch, same run):"
    )
    for backend, stats in embed_ms.items():
        mark = " (in use)" if backend == result.embedder_backend else ""
        ratio = speedup(embed_ms["torch"]["p50"], stats["p50"])
        lines.append(f"  {backend:10} {stats['p50']:.2f} / {stats['p95']:.2f}  ({ratio:.2f}x){mark}")
    lines.append("\nlatency ms (p50 / p95); bm25 runs beside embed_query + dense_search, search = both together")
    header = f"{'chunks':>9} {'bm25':>13} {'embed_query':>13} {'dense_search':>13} {'search':>13} {'fusion':>7}"
    header += f" {'dedup':>7} {'total':>13} {'sequential (x)':>20} {'rank-bm25 (x)':>22} {'llamaindex (x)':>20}"
    lines.append(header)
    lines += [_scale_line(run) for run in result.scale_runs]
    builds = [f"{run.size}: {run.build_s:.0f} s" for run in result.scale_runs if run.build_s is not None]
    if builds:
        lines.append("our index build (synthetic vectors, no embedding): " + ", ".join(builds))
    return lines


def _scale_line(run: ScaleRun) -> str:
    ours, sequential = run.ours, run.sequential
    cells = [f"{ours[s]['p50']:.2f} / {ours[s]['p95']:.1f}" for s in ("bm25", "embed_query", "dense_search", "search")]
    line = (
        f"{run.size:>9} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} {cells[3]:>13} {ours['fusion']['p50']:>7.2f}"
        f" {ours['dedup']['p50']:>7.2f} {ours['total']['p50']:>6.1f} / {ours['total']['p95']:<5.1f}"
        f" {sequential['total']['p50']:>7.1f} ({run.overlap_speedup:.2f}x)"
    )
    if run.baselines is None:
        return line + f"  baselines skipped (size > --baseline-max-size {run.baseline_max_size})"
    reference, llama = run.baselines.rank_bm25_ms, run.baselines.llamaindex_ms
    line += f" {reference['p50']:>8.1f} / {reference['p95']:.1f} ({run.bm25_speedup_vs_rank_bm25:.0f}x)"
    return line + f" {llama['p50']:>8.1f} / {llama['p95']:.1f} ({run.speedup_vs_llamaindex:.2f}x)"


def ingest_event_line(event: IngestEvent) -> str:
    """One line for a row measured mid-run (see ``eval.bench.ingest.bench_ingest``)."""
    if isinstance(event, PaddingRatios):
        ratios = ", ".join(f"{size}: {ratio:.3f}" for size, ratio in event.ratios.items())
        return (
            f"{event.documents} documents from {event.corpus}\n"
            f"  padded tokens vs one sorted pass, by documents per embedding call: {ratios}"
        )
    if isinstance(event, RaptorBuild):
        return (
            f"  {event.label}: {event.seconds:.1f} s, {event.llm_calls} LLM calls, {event.summaries} summaries, "
            f"{event.chunks} chunks from {event.documents} documents"
        )
    return f"  {event.label}: {event.chunks_per_s:.1f} chunks/s"


def ingest_lines(result: IngestBenchResult) -> list[str]:
    """The throughput table and the ratios against the raw embedder and LlamaIndex (nothing without
    a throughput run)."""
    comparison = result.throughput
    if comparison is None:
        return []
    lines = []
    if comparison.llamaindex_error is not None:
        lines.append(f"  LlamaIndex IngestionPipeline failed, left out of the table: {comparison.llamaindex_error}")
    limit_rate = comparison.limit.chunks_per_s
    header = f"{'docs':>7}{'chunks':>8}{'seconds':>9}{'cpu s':>8}{'docs/s':>9}{'chunks/s':>10}{'vs limit':>10}"
    lines.append(f"\n{'':32}{header}")
    lines += [_throughput_row(row, limit_rate) for row in [comparison.before, comparison.after, *comparison.results]]
    lines.append(f"\nragline vs the raw embedder: {comparison.ours_vs_limit:.1%} of its rate (wall)")
    lines.append(f"  {comparison.ours_vs_limit_cpu:.1%} by CPU seconds (raw CPU s / ours CPU s)")
    if comparison.ours_vs_llamaindex is not None:
        lines.append(f"\nragline vs LlamaIndex: {comparison.ours_vs_llamaindex}x chunks/s")
    return lines


def _throughput_row(row: Throughput, limit_rate: float) -> str:
    return (
        f"{row.label:32}{row.documents:>7}{row.chunks:>8}{row.seconds:>9.1f}{row.cpu_seconds:>8.1f}"
        f"{row.docs_per_s:>9.1f}{row.chunks_per_s:>10.1f}{row.chunks_per_s / limit_rate:>9.0%}"
    )


MEMORY_ROWS = (
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
)


def memory_lines(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Memory vs keep-everything, one row per summary figure (``eval.bench.memory.summarize``)."""
    lines = [f"\n{'':30}{'memory':>16}{'keep_everything':>18}"]
    for label, key in MEMORY_ROWS:
        cells = [summary[mode].get(key) for mode in MODES]
        lines.append(
            f"{label:30}" + "".join(f"{'-' if c is None else c!s:>{w}}" for c, w in zip(cells, (16, 18), strict=True))
        )
    return lines


def rerank_lines(result: RerankBenchResult) -> list[str]:
    """nDCG@10 and rerank latency per variant, then each engine's speed-up over the first."""
    sizes = result.sizes
    lines = [
        f"{result.questions} questions on {result.collection!r}, top {result.quality_top_n} reranked for quality, "
        f"weight {result.weight}",
        f"{'variant':34} {'nDCG@10':>8}" + "".join(f" {f'top-{n} ms (p90)':>20}" for n in sizes),
        f"{HYBRID:34} {result.ndcg_at_10[HYBRID]:8.4f}",
    ]
    for name, by_size in result.latency_ms.items():
        cells = "".join(f" {by_size[n]['median_ms']:>10.1f} ({by_size[n]['p90_ms']:.1f})" for n in sizes)
        lines.append(f"{name:34} {result.ndcg_at_10[name]:8.4f}{cells}")
    for name, ratios in result.speedup.items():
        lines.append(
            f"speed-up over {result.speedup_vs}, {name}: " + ", ".join(f"top-{n} {r}x" for n, r in ratios.items())
        )
    return lines
