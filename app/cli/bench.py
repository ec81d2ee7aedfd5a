"""``ragline bench ...``: measured, never asserted. Each benchmark prints medians and ratios against baselines run
in the same process, and writes its numbers to ``<data_dir>/reports/``.

Each command parses its flags, builds the parts with ``app.bench_wiring``, runs the bench from ``eval.bench`` and
prints what ``eval.bench.report`` renders."""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import check_collection_name, configure_logging, fail, print_corpus_ingest
from app.settings import get_settings
from eval.bench.memory import CONVERSATION_SCRIPTS
from eval.bench.rerank import SAMPLE_QA

app = typer.Typer(help="Benchmarks: latency and throughput against baselines.", no_args_is_help=True)


def parse_sizes(text: str) -> list[int]:
    """``--sizes``: comma-separated corpus sizes, each at least 100 chunks."""
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(f"--sizes must be comma-separated integers, got {text!r}") from None
    if any(size < 100 for size in sizes):
        raise typer.BadParameter("every size must be at least 100")
    return sizes


def parse_positive_ints(text: str) -> list[int]:
    """Comma-separated positive integers, in the order given."""
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise typer.BadParameter(f"expected positive integers, got {text!r}")
    return values


def parse_top_ns(text: str) -> list[int]:
    """``--top-n``: comma-separated positive candidate counts, deduplicated and sorted."""
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise typer.BadParameter(f"--top-n must be comma-separated integers, got {text!r}") from None
    if not values or values[0] < 1:
        raise typer.BadParameter("--top-n values must be positive")
    return values


@app.command("retrieval")
def bench_retrieval(
    beir: Annotated[Path, typer.Option(help="BEIR folder of the real corpus (quality + text for scale).")] = Path(
        "../shared/data/scifact"
    ),
    split: Annotated[str, typer.Option(help="qrels split for nDCG@10.")] = "train",
    sizes: Annotated[str, typer.Option(help="Synthetic corpus sizes (chunks) for latency.")] = "10000,100000",
    queries: Annotated[int, typer.Option(min=5, help="Queries timed per size.")] = 100,
    baseline_queries: Annotated[int, typer.Option(min=5, help="Queries timed for slow baselines.")] = 20,
    baseline_max_size: Annotated[
        int,
        typer.Option(
            min=100,
            help="Build the LlamaIndex and rank-bm25 baselines only up to this size: at 1M chunks building them "
            "takes longer than our own index (the output says which were skipped).",
        ),
    ] = 100_000,
    quality_queries: Annotated[
        int | None, typer.Option(min=5, help="Judged queries for nDCG@10 on the real corpus (default: all).")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the synthetic collections for a later run (reused there).")] = False,
) -> None:
    """Per-stage latency p50/p95 at each size against baselines in the same run; nDCG@10 on the real corpus.

    Our path is the pipeline's own retrieval stages (hybrid search with BM25 beside the query embedding, fusion,
    dedup; no rerank), timed next to the former sequential path on each query. The query embedding is also
    timed per engine (torch, onnx, onnx-int8) on the same queries."""
    from app.bench_wiring import retrieval_bench_parts, stage_paths
    from app.resources import ModelMissingError
    from eval.bench.common import write_report
    from eval.bench.report import retrieval_lines
    from eval.bench.retrieval import RetrievalBenchConfig
    from eval.bench.retrieval import bench_retrieval as run_bench

    configure_logging()
    settings = get_settings()
    scale_sizes = parse_sizes(sizes)
    config = RetrievalBenchConfig(scale_sizes, queries, baseline_queries, baseline_max_size, quality_queries, keep)
    try:
        parts = retrieval_bench_parts(settings, beir, split)
    except (FileNotFoundError, ValueError, ModelMissingError) as exc:
        raise fail(str(exc)) from None
    print_corpus_ingest(parts.ingested)
    result = run_bench(
        parts.index,
        parts.collection,
        parts.dataset,
        fusion=parts.fusion,
        embedder_model_dir=parts.embedder_model_dir,
        embedder_backend=settings.embedder_backend,
        query_paths=lambda index: stage_paths(index, parts.fusion),
        scale_dir=settings.data_dir / "bench-scale",
        config=config,
        corpus=str(beir),
        on_phase=lambda phase: typer.echo(f"{phase} …"),
    )
    for line in retrieval_lines(result):
        typer.echo(line)
    typer.echo(f"\nreport: {write_report(settings.reports_dir, 'retrieval', result.as_report())}")


@app.command("bm25-update")
def bench_bm25_update(
    corpus: Annotated[Path, typer.Option(help="BEIR corpus.jsonl[.gz] whose sentences make the chunks.")] = Path(
        "../shared/data/scifact/corpus.jsonl.gz"
    ),
    queries_file: Annotated[Path, typer.Option("--queries", help="BEIR queries.jsonl timed on both indexes.")] = Path(
        "../shared/data/scifact/queries.jsonl"
    ),
    sizes: Annotated[str, typer.Option(help="Collection sizes (chunks), comma-separated.")] = "10000,100000",
    chunks_per_doc: Annotated[int, typer.Option(min=1, help="Chunks per document (one add = one document).")] = 10,
    repeats: Annotated[int, typer.Option(min=1, help="One-document adds timed per size.")] = 5,
    query_count: Annotated[int, typer.Option("--query-count", min=5, help="Queries timed per size.")] = 200,
    probes: Annotated[int, typer.Option(min=1, help="Writes timed for the stale window, per check interval.")] = 20,
    check_ms: Annotated[
        str, typer.Option(help="Version-check intervals of the reader process (ms), comma-separated; empty: skip.")
    ] = "0,250",
) -> None:
    """Adding one document to BM25: full bm25s rebuild (before) vs incremental segments (after), query p50 of
    both on the same collection, and the stale window seen by a second process, all in one run.

    The store is a fresh SQLite file, or RAGLINE_DATABASE_URL (its `bench` collection is emptied first)."""
    from app.resources import bm25_config
    from eval.bench.bm25_update import BM25UpdateConfig, bm25_update_lines
    from eval.bench.bm25_update import bench_bm25_update as run_bench
    from eval.bench.common import write_report

    configure_logging()
    settings = get_settings()
    intervals = [int(v) for v in check_ms.split(",") if v.strip()]
    config = BM25UpdateConfig(
        parse_sizes(sizes), chunks_per_doc, repeats, query_count, probes, intervals, settings.database_url
    )
    for size in config.sizes:  # one report per size as soon as it is measured: a 100k run is long
        one = replace(config, sizes=[size])
        try:
            results = run_bench(corpus, queries_file, bm25_config(settings), one, lambda p: typer.echo(f"{p} …"))
        except (FileNotFoundError, ValueError) as exc:
            raise fail(str(exc)) from None
        for line in bm25_update_lines(results, one):
            typer.echo(line)
        report = {"corpus": str(corpus), "config": asdict(one), "sizes": [r.as_report() for r in results]}
        typer.echo(f"report: {write_report(settings.reports_dir, f'bm25-update-{size}', report)}")


@app.command("ingest")
def bench_ingest(
    corpus: Annotated[Path, typer.Option(help="BEIR corpus.jsonl[.gz] to ingest.")] = Path(
        "../shared/data/scifact/corpus.jsonl.gz"
    ),
    limit: Annotated[int | None, typer.Option(min=10, help="Use the first N documents (default: all).")] = None,
    baseline: Annotated[bool, typer.Option(help="Also run LlamaIndex's IngestionPipeline.")] = True,
    raptor: Annotated[
        bool, typer.Option(help="Also time RAPTOR builds of the sample corpus (needs vLLM at RAGLINE_LLM_BASE_URL).")
    ] = False,
    raptor_parallel: Annotated[
        str, typer.Option(help="With --raptor: documents built at once, one build per value (comma-separated).")
    ] = "16,1",
    raptor_folder: Annotated[
        Path | None, typer.Option(help="With --raptor: the folder to build (default: the bundled sample corpus).")
    ] = None,
    throughput: Annotated[
        bool, typer.Option(help="Run the throughput comparison (--no-throughput: RAPTOR only).")
    ] = True,
) -> None:
    """Docs/s and chunks/s of `ragline ingest` (fixed chunker) vs the raw embedder and LlamaIndex, same run.

    The raw embedder runs before and after our ingest and the limit is their mean, so load that drifts during the
    run (a shared machine) moves the limit with it; CPU seconds per row are printed beside the wall time."""
    from app.bench_wiring import ingest_setup
    from app.llm import LLMUnavailableError
    from app.resources import ModelMissingError
    from eval.bench.common import write_report
    from eval.bench.ingest import bench_ingest as run_bench
    from eval.bench.ingest import load_documents
    from eval.bench.report import ingest_event_line, ingest_lines
    from ingest.samples import sample_corpus_dir

    configure_logging()
    folder = (raptor_folder or sample_corpus_dir()) if raptor else None
    parallel = parse_positive_ints(raptor_parallel) if raptor else []
    if folder is not None and not folder.is_dir():
        raise fail(f"--raptor-folder {folder} is not a folder")
    settings = get_settings()
    try:
        documents = load_documents(corpus, limit)
        setup = ingest_setup(settings, llamaindex=baseline)
        result = run_bench(
            setup, documents, corpus=str(corpus), raptor_folder=folder, raptor_parallel=parallel,
            throughput=throughput, on_event=lambda event: typer.echo(ingest_event_line(event)),
        )  # fmt: skip
    except (FileNotFoundError, ValueError, ModelMissingError, LLMUnavailableError) as exc:
        raise fail(str(exc)) from None
    except RuntimeError as exc:  # a RAPTOR build with failed documents
        raise fail(f"{exc} (a slow, shared vLLM: raise RAGLINE_LLM_TIMEOUT_S)") from None
    for line in ingest_lines(result):
        typer.echo(line)
    typer.echo(f"report: {write_report(settings.reports_dir, 'ingest', result.as_report())}")


@app.command("workers")
def bench_workers(
    corpus: Annotated[Path, typer.Option(help="BEIR corpus.jsonl[.gz] to ingest.")] = Path(
        "../shared/data/scifact/corpus.jsonl.gz"
    ),
    limit: Annotated[int, typer.Option(min=2, help="Use the first N documents, as two jobs of N/2.")] = 400,
    rounds: Annotated[str, typer.Option(help="Worker counts, one round each, in this order.")] = "1,2",
) -> None:
    """Ingestion docs/s with 1 and 2 `ragline worker` processes on the same documents, same run.

    The documents are two jobs into two collections (one collection's jobs run one at a time by design); each round
    starts its workers, waits until they poll, enqueues both jobs and times enqueue to the last job's end. Needs
    RAGLINE_DATABASE_URL (PostgreSQL) and RAGLINE_CHROMA_URL (a Chroma server)."""
    from app.bench_workers import bench_workers as run_bench

    configure_logging()
    try:
        results = run_bench(get_settings(), corpus, limit, parse_positive_ints(rounds))
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise fail(str(exc)) from None
    for result in results:
        typer.echo(
            f"{result.workers} worker(s): {result.documents} docs, {result.chunks} chunks in {result.seconds:.1f} s "
            f"= {result.docs_per_s:.1f} docs/s"
        )


@app.command("memory")
def bench_memory(
    scripts: Annotated[Path, typer.Option(help="Folder of conversation scripts (*.json).")] = CONVERSATION_SCRIPTS,
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
    from app.bench_wiring import memory_bench_parts
    from app.llm import LLMUnavailableError
    from app.memory_wiring import MemoryDisabledError
    from app.resources import ModelMissingError
    from eval.bench.common import report_path
    from eval.bench.memory import MODES, load_scripts, run_benchmark
    from eval.bench.report import memory_lines

    configure_logging()
    settings = get_settings()
    try:
        loaded = load_scripts(scripts, limit=limit, turns=turns)
        parts = memory_bench_parts(settings, loaded, lambda: typer.echo("ingesting the sample corpus …"))
    except (FileNotFoundError, ModelMissingError, MemoryDisabledError, LLMUnavailableError, ValueError) as exc:
        raise fail(str(exc)) from None
    options = {"max_answer_tokens": max_answer_tokens, "context_top_k": context_top_k}
    # Keep-everything must not be cut by the prompt budget: give it the whole model context.
    baseline = {**options, "context_budget_tokens": parts.model_context_tokens}
    out = report_path(settings.reports_dir, "memory")
    typer.echo(f"{len(loaded)} scripts × {len(loaded[0].turns)} turns, report (updated each turn): {out}")
    result = run_benchmark(
        parts.service, parts.pipeline, loaded, memory_options=options, baseline_options=baseline, out=out,
        modes=mode or MODES, concurrency=concurrency,
    )  # fmt: skip
    for line in memory_lines(result.summary):
        typer.echo(line)
    typer.echo(f"\nreport: {out}")


@app.command("rerank")
def bench_rerank(
    model: Annotated[list[str], typer.Option(help="Reranker: registry name, trained name or folder (repeatable).")],
    collection: Annotated[str, typer.Option(help="Collection the questions are asked of.")] = "sample",
    dataset: Annotated[Path, typer.Option(help="Questions with gold doc ids (JSONL/CSV).")] = SAMPLE_QA,
    top_n: Annotated[str, typer.Option(help="Candidates reranked, comma-separated.")] = "20,50",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    max_length: Annotated[int | None, typer.Option(min=16, help="Tokens per pair (default rerank_max_length).")] = None,
    weight: Annotated[float | None, typer.Option(min=0, max=1, help="Blend weight (default rerank_weight).")] = None,
    backends: Annotated[
        str, typer.Option(help="Engines, comma-separated; speed-ups are against the first.")
    ] = "torch,torch-int8,onnx,onnx-int8",
) -> None:
    """nDCG@10 of hybrid vs hybrid+rerank and rerank latency at each top N, for each model on each engine."""
    from app.bench_wiring import rerank_bench_parts
    from eval.bench.common import write_report
    from eval.bench.report import rerank_lines
    from eval.bench.rerank import bench_rerank as run_bench
    from eval.qa import DatasetError
    from retrieval.rerank import RERANK_BACKENDS

    configure_logging()
    settings = get_settings()
    engines = list(dict.fromkeys(b.strip() for b in backends.split(",") if b.strip()))
    if not engines or any(b not in RERANK_BACKENDS for b in engines):
        raise typer.BadParameter(f"--backends takes {', '.join(RERANK_BACKENDS)}; got {backends!r}")
    sizes = parse_top_ns(top_n)
    blend = settings.rerank_weight if weight is None else weight
    length = max_length or settings.rerank_max_length
    try:
        parts = rerank_bench_parts(
            settings, model, engines, collection=collection, dataset=dataset, limit=limit, max_length=length,
            depth=max(sizes),
        )  # fmt: skip
    except (DatasetError, FileNotFoundError, ValueError, LookupError) as exc:
        raise fail(str(exc)) from None
    result = run_bench(
        parts.variants, parts.candidates, sizes, weight=blend, collection=collection, dataset=str(dataset),
        questions=parts.questions, max_length=length,
    )  # fmt: skip
    for line in rerank_lines(result):
        typer.echo(line)
    typer.echo(f"report: {write_report(settings.reports_dir, 'rerank', result.as_report())}")


@app.command("load")
def bench_load(
    clients: Annotated[int, typer.Option(min=1, max=256, help="Concurrent clients.")] = 32,
    seconds: Annotated[float, typer.Option(min=1, max=3600, help="How long the clients keep asking.")] = 60,
    llm: Annotated[
        str, typer.Option(help="live (the configured vLLM), dead (refuses) or trickle (never ends).")
    ] = "live",
    collection: Annotated[str, typer.Option(help="Collection asked (must exist; nothing is ingested).")] = "sample",
    llm_timeout_s: Annotated[
        float | None, typer.Option(min=0.1, help="Override RAGLINE_LLM_TIMEOUT_S for the run.")
    ] = None,
) -> None:
    """Status counts (2xx/4xx/5xx by exact status, client timeouts, connection errors) and latency p50/p90/p99/max
    of POST /v1/query under concurrent clients, against the API started in this process over a collection.

    Every fourth request is streamed; the client-side timeout is the LLM deadline + 30 s."""
    from app.bench_wiring import api_under_load
    from app.resources import ModelMissingError
    from eval.bench.common import write_report
    from eval.bench.load import run_load

    configure_logging()
    # One "LLM request failed" warning per request would bury the table that counts them; errors still show.
    logging.getLogger("app.api.errors").setLevel(logging.ERROR)
    check_collection_name(collection)
    settings = get_settings()
    timeout = llm_timeout_s or settings.llm_timeout_s
    try:
        with api_under_load(settings, llm, llm_timeout_s, collection) as url:
            typer.echo(f"{clients} clients for {seconds:g} s against {url} ({collection}), LLM {llm}, ", nl=False)
            typer.echo(f"deadline {timeout:g} s …")
            result = run_load(
                url, clients=clients, seconds=seconds, client_timeout_s=timeout + 30, collection=collection
            )
    except (LookupError, ValueError, ModelMissingError, RuntimeError) as exc:
        raise fail(str(exc)) from None
    for line in result.lines():
        typer.echo(line)
    summary = {**result.summary(), "llm": llm, "llm_timeout_s": timeout, "collection": collection}
    typer.echo(f"report: {write_report(settings.reports_dir, f'load-{llm}', summary)}")


@app.command("replicas")
def bench_replicas(
    replicas: Annotated[str, typer.Option(help="Replica counts, one run each, e.g. 1,2.")] = "1,2",
    clients: Annotated[int, typer.Option(min=1, max=256, help="Concurrent clients.")] = 16,
    seconds: Annotated[float, typer.Option(min=1, max=3600, help="How long the clients keep asking, per row.")] = 30,
    llm: Annotated[
        str, typer.Option(help="live (the configured vLLM, shared) or instant (a named fake: the API tier alone).")
    ] = "instant",
    collection: Annotated[str, typer.Option(help="Collection asked (must exist; nothing is ingested).")] = "sample",
) -> None:
    """Queries per second and p50/p99 of POST /v1/query with 1, 2, … `ragline serve` processes over the same
    PostgreSQL and Chroma server (RAGLINE_DATABASE_URL, RAGLINE_CHROMA_URL), in one run, with ratios to the first."""
    import tempfile

    from app.bench_wiring import ReplicaSetupError, api_replicas
    from eval.bench.common import write_report
    from eval.bench.replicas import compare_replicas

    configure_logging()
    check_collection_name(collection)
    counts = parse_positive_ints(replicas)
    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="ragline-replicas-") as workdir:
        try:
            comparison = compare_replicas(
                lambda n: api_replicas(settings, n, llm, Path(workdir) / f"run-{n}"),
                counts,
                clients=clients,
                seconds=seconds,
                client_timeout_s=settings.llm_timeout_s + 30,
                collection=collection,
                progress=typer.echo,
            )
        except (ReplicaSetupError, ValueError) as exc:
            raise fail(str(exc)) from None
    for line in comparison.lines():
        typer.echo(line)
    summary = {**comparison.summary(), "llm": llm, "collection": collection}
    typer.echo(f"report: {write_report(settings.reports_dir, f'replicas-{llm}', summary)}")


@app.command("llm")
def bench_llm(
    dtypes: Annotated[
        str, typer.Option(help="vLLM weight dtypes, comma-separated; one server each, ratios against the first.")
    ] = "bfloat16,float32",
    model: Annotated[str | None, typer.Option(help="Generator (default: settings.generator).")] = None,
    prompt_tokens: Annotated[int, typer.Option(min=32, help="Prompt length, about (a RAG prompt's evidence).")] = 2000,
    answer_tokens: Annotated[int, typer.Option(min=2, help="Tokens generated per full request.")] = 64,
    requests: Annotated[int, typer.Option(min=1, help="Streamed requests per server (medians).")] = 3,
) -> None:
    """Prefill and answer time of a local vLLM server per weight dtype: the case for ``vllm_dtype = auto``."""
    from app.cli.services import vllm_server
    from app.vllm_server import VLLM_DTYPES, VLLMStartError, free_port
    from eval.bench.common import write_report
    from eval.bench.llm import LLMBenchResult, llm_lines, measure_server

    configure_logging()
    settings = get_settings()
    chosen = list(dict.fromkeys(d.strip() for d in dtypes.split(",") if d.strip()))
    if not chosen or any(d not in VLLM_DTYPES for d in chosen):
        raise typer.BadParameter(f"--dtypes takes {', '.join(VLLM_DTYPES)}; got {dtypes!r}")
    if prompt_tokens + answer_tokens >= settings.vllm_max_model_len:
        raise typer.BadParameter(
            f"--prompt-tokens plus --answer-tokens must stay below vllm_max_model_len ({settings.vllm_max_model_len})"
        )
    runs = []
    for dtype in chosen:
        server = vllm_server(settings.model_copy(update={"vllm_dtype": dtype}), model, free_port())
        server.log_path = settings.data_dir / "logs" / f"vllm-bench-{dtype}.log"
        label = dtype if dtype != "auto" else f"auto={server.dtype}"
        typer.echo(f"starting vLLM ({label}); log: {server.log_path}", err=True)
        try:
            server.start(settings.vllm_start_timeout_s)
        except VLLMStartError as exc:
            raise fail(str(exc)) from None
        timeout_s = max(settings.llm_timeout_s, 900.0)
        try:
            run = measure_server(
                label, server.base_url, server.served_name, prompt_tokens=prompt_tokens,
                answer_tokens=answer_tokens, requests=requests, timeout_s=timeout_s,
            )  # fmt: skip
            runs.append(run)
        finally:
            server.stop()
    config = {"prompt_tokens": prompt_tokens, "answer_tokens": answer_tokens, "requests": requests}
    result = LLMBenchResult(model or settings.generator, runs, config)
    for line in llm_lines(result):
        typer.echo(line)
    typer.echo(f"report: {write_report(settings.reports_dir, 'llm', result.as_report())}")
