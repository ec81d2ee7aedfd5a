"""``ragline bench ...``: measured, never asserted. Each benchmark prints medians and ratios against baselines run
in the same process, and writes its numbers to ``<data_dir>/reports/``."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.bench_memory_command import bench_memory
from app.bench_rerank_command import bench_rerank
from app.settings import get_settings

if TYPE_CHECKING:
    from app.resources import Resources

bench_app = typer.Typer(help="Benchmarks: latency and throughput against baselines.", no_args_is_help=True)
bench_app.command("memory")(bench_memory)
bench_app.command("rerank")(bench_rerank)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(f"--sizes must be comma-separated integers, got {text!r}") from None
    if any(size < 100 for size in sizes):
        raise typer.BadParameter("every size must be at least 100")
    return sizes


@bench_app.command("retrieval")
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
    import numpy as np
    from rank_bm25 import BM25Okapi

    from app.cli.common import configure_logging as _configure_logging
    from app.cli.common import fail as _fail
    from app.corpus_collections import ensure_corpus_collection
    from app.resources import ModelMissingError, Resources
    from eval.baselines.llamaindex_fusion import LlamaIndexFusionBaseline
    from eval.beir import load_beir
    from eval.bench_retrieval import (
        build_scale_collection,
        percentiles,
        synthesize,
        time_callable,
        time_query_embedding,
        time_query_path,
    )
    from eval.metrics import evaluate_retrieval
    from retrieval.embedder import SentenceTransformerEmbedder
    from retrieval.fusion import make_fusion
    from retrieval.index import Index
    from retrieval.tokenize import Tokenizer

    _configure_logging()
    settings = get_settings()
    scale_sizes = _sizes(sizes)
    try:
        dataset = load_beir(beir, split)
        resources = Resources(settings)
        name = f"beir-{beir.resolve().name}"
        ensure_corpus_collection(resources, name, dataset.corpus)
    except (FileNotFoundError, ValueError, ModelMissingError) as exc:
        raise _fail(str(exc)) from None
    index = resources.index
    fusion = make_fusion(settings.fusion, rrf_k=settings.rrf_k, alpha=settings.fusion_alpha)
    query_items = list(dataset.queries.items())
    query_texts = [text for _, text in query_items]
    quality_items = query_items[:quality_queries] if quality_queries else query_items
    report: dict[str, object] = {
        "corpus": str(beir),
        "split": split,
        "fusion": fusion.describe(),
        "embedder_backend": settings.embedder_backend,
        "sizes": {},
    }

    engines = {
        backend: SentenceTransformerEmbedder(resources.embedder.model_dir, query_backend=backend)
        for backend in ("torch", "onnx", "onnx-int8")
    }
    for engine in engines.values():
        engine.embed(["warm up"])
    embed_ms = time_query_embedding(engines, query_texts[:queries])
    report["embed_query_ms_by_backend"] = embed_ms
    del engines

    # Quality on the real corpus: ours (hybrid) and rank-bm25 with the same tokens.
    chunks = index.manifest.chunks(name)
    tokenize = Tokenizer(index.bm25_config.tokenizer)
    started = time.perf_counter()
    reference = BM25Okapi([tokenize(c.text) for c in chunks], k1=index.bm25_config.k1, b=index.bm25_config.b)
    reference_build_s = time.perf_counter() - started

    def rank_bm25_docs(query: str, k: int = 100) -> list[str]:
        scores = reference.get_scores(tokenize(query))
        top = np.argsort(-scores)[:k]
        return [chunks[i].doc_id for i in top if scores[i] > 0]

    def ours_docs(query: str, k: int = 100) -> list[str]:
        lists = {"bm25": index.search_bm25(name, query, k), "dense": index.search_dense(name, query, k)}
        return [hit.chunk.doc_id for hit in fusion.fuse(lists)]

    vectors = index.vectors.vectors(name, [c.id for c in chunks])
    texts = [c.text for c in chunks]
    scale_dir = settings.data_dir / "bench-scale"
    for stale in scale_dir.glob("llamaindex-*"):  # baselines are rebuilt each run; our scale collections reused
        shutil.rmtree(stale, ignore_errors=True)
    llama = LlamaIndexFusionBaseline(resources.embedder.model_dir, scale_dir / "llamaindex-real", top_k=100)
    llama.build([c.id for c in chunks], texts, vectors.tolist())
    doc_of = {c.id: c.doc_id for c in chunks}

    def llama_docs(query: str, k: int = 100) -> list[str]:
        return [doc_of[node_id] for node_id, _ in llama.retrieve(query, k)]

    typer.echo("quality on the real corpus …")
    quality: dict[str, float] = {}
    real_latency: dict[str, dict[str, float]] = {}
    for label, retrieve in (
        ("ours_hybrid", ours_docs),
        ("rank_bm25", rank_bm25_docs),
        ("llamaindex_fusion", llama_docs),
    ):
        started_at, run, ms = time.perf_counter(), {}, []
        for qid, text in quality_items:
            started_at = time.perf_counter()
            run[qid] = retrieve(text)
            ms.append((time.perf_counter() - started_at) * 1000)
        quality[label] = evaluate_retrieval(run, {q: dataset.qrels[q] for q in run}, (10,))["ndcg@10"]
        real_latency[label] = percentiles(ms)
    report["ndcg@10"] = quality
    report["real_corpus_latency_ms"] = real_latency
    rows = []
    for size in scale_sizes:
        synthetic_texts, synthetic_vectors = synthesize(texts, vectors, size)
        scale_index = Index(scale_dir, resources.embedder, bm25_config=index.bm25_config)
        collection = f"scale-{size}"
        build_started, built = time.perf_counter(), False
        if scale_index.counts(collection).chunks != size:
            build_scale_collection(scale_index, collection, synthetic_texts, synthetic_vectors)
            built = True
        build_s = time.perf_counter() - build_started
        timed = query_texts[:queries]
        scale_index.search_bm25(collection, "warm up", 5)  # load the index once, as a server would
        paths = time_query_path(scale_index, collection, timed, fusion)
        ours, sequential = paths["overlapped"].summary(), paths["sequential"].summary()
        entry: dict[str, object] = {
            "ours_ms": ours,
            "ours_sequential_ms": sequential,
            "overlap_speedup": round(sequential["total"]["p50"] / max(ours["total"]["p50"], 1e-9), 2),
            "build_s": round(build_s, 1) if built else None,
        }
        ref = llama_ms = None
        ratio = llama_ratio = 0.0
        if size <= baseline_max_size:
            ref_started = time.perf_counter()
            scale_reference = BM25Okapi([tokenize(t) for t in synthetic_texts], k1=index.bm25_config.k1)
            ref_build = time.perf_counter() - ref_started
            ref = time_callable(lambda q, r=scale_reference: r.get_scores(tokenize(q)), query_texts[:baseline_queries])
            ratio = ref["p50"] / max(ours["bm25"]["p50"], 1e-9)
            del scale_reference
            scale_llama = LlamaIndexFusionBaseline(resources.embedder.model_dir, scale_dir / f"llamaindex-{size}", 20)
            llama_started = time.perf_counter()
            scale_llama.build([f"s{i}" for i in range(size)], synthetic_texts, synthetic_vectors.tolist())
            llama_build = time.perf_counter() - llama_started
            llama_ms = time_callable(lambda q, r=scale_llama: r.retrieve(q, 20), timed)
            llama_ratio = llama_ms["p50"] / max(ours["total"]["p50"], 1e-9)
            del scale_llama
            entry.update(
                rank_bm25_ms=ref,
                rank_bm25_build_s=round(ref_build, 1),
                bm25_speedup_vs_rank_bm25=round(ratio, 1),
                llamaindex_fusion_ms=llama_ms,
                llamaindex_build_s=round(llama_build, 1),
                speedup_vs_llamaindex=round(llama_ratio, 2),
            )
        else:
            entry["baselines_skipped"] = f"size {size} > --baseline-max-size {baseline_max_size}"
        report["sizes"][str(size)] = entry  # type: ignore[index]
        rows.append((size, ours, sequential, ref, ratio, llama_ms, llama_ratio, entry["build_s"]))
        if not keep:
            shutil.rmtree(scale_dir / f"llamaindex-{size}", ignore_errors=True)

    typer.echo(f"\nreal corpus ({beir.name} {split}, {len(quality_items)} queries): nDCG@10 and latency p50 ms")
    for label, score in quality.items():
        typer.echo(f"  {label:18} nDCG@10 {score:.4f}   p50 {real_latency[label]['p50']:.1f} ms")
    typer.echo(f"rank-bm25 index build on the real corpus: {reference_build_s:.1f} s")
    torch_p50 = embed_ms["torch"]["p50"]
    typer.echo(f"\none query's embedding, {queries} queries, ms p50 / p95 (x = speed-up vs torch, same run):")
    for backend, stats in embed_ms.items():
        mark = " (in use)" if backend == settings.embedder_backend else ""
        speedup = torch_p50 / max(stats["p50"], 1e-9)
        typer.echo(f"  {backend:10} {stats['p50']:.2f} / {stats['p95']:.2f}  ({speedup:.2f}x){mark}")
    typer.echo("\nlatency ms (p50 / p95); bm25 runs beside embed_query + dense_search, search = both together")
    header = f"{'chunks':>9} {'bm25':>13} {'embed_query':>13} {'dense_search':>13} {'search':>13} {'fusion':>7}"
    header += f" {'dedup':>7} {'total':>13} {'sequential (x)':>20} {'rank-bm25 (x)':>22} {'llamaindex (x)':>20}"
    typer.echo(header)
    for size, ours, sequential, ref, ratio, llama_ms, llama_ratio, _build in rows:
        cells = [f"{ours[s]['p50']:.2f} / {ours[s]['p95']:.1f}" for s in ("bm25", "embed_query", "dense_search")]
        cells += [f"{ours['search']['p50']:.2f} / {ours['search']['p95']:.1f}"]
        overlap = sequential["total"]["p50"] / max(ours["total"]["p50"], 1e-9)
        line = (
            f"{size:>9} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} {cells[3]:>13} {ours['fusion']['p50']:>7.2f}"
            f" {ours['dedup']['p50']:>7.2f} {ours['total']['p50']:>6.1f} / {ours['total']['p95']:<5.1f}"
            f" {sequential['total']['p50']:>7.1f} ({overlap:.2f}x)"
        )
        if ref is not None and llama_ms is not None:
            line += f" {ref['p50']:>8.1f} / {ref['p95']:.1f} ({ratio:.0f}x)"
            line += f" {llama_ms['p50']:>8.1f} / {llama_ms['p95']:.1f} ({llama_ratio:.2f}x)"
        else:
            line += f"  baselines skipped (size > --baseline-max-size {baseline_max_size})"
        typer.echo(line)
    builds = [f"{size}: {build_s:.0f} s" for size, *_, build_s in rows if build_s is not None]
    if builds:
        typer.echo("our index build (synthetic vectors, no embedding): " + ", ".join(builds))
    if not keep:
        shutil.rmtree(scale_dir, ignore_errors=True)
    out = settings.reports_dir / f"bench-retrieval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    typer.echo(f"\nreport: {out}")


PADDING_BATCHES = (32, 128, 256, 512, 1024)
EMBED_MINI_BATCH = 64  # SentenceTransformerEmbedder's default batch_size


@bench_app.command("ingest")
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
    import tempfile

    from app.chunking import make_chunker
    from app.cli.common import configure_logging as _configure_logging
    from app.cli.common import fail as _fail
    from app.resources import ModelMissingError, Resources, bm25_config
    from eval.beir import load_corpus
    from eval.bench_ingest import (
        embedder_token_lengths,
        llamaindex_pipeline,
        mean_rate,
        ours,
        padding_by_batch,
        raw_embedder,
    )
    from ingest.chunkers.fixed import load_token_counter
    from ingest.document import Document
    from ingest.samples import sample_corpus_dir
    from retrieval.index import Index

    _configure_logging()
    settings = get_settings()
    try:
        rows = load_corpus(corpus)
        resources = Resources(settings)
        chunker = make_chunker(resources, "fixed")
        embedder = resources.embedder
    except (FileNotFoundError, ValueError, ModelMissingError) as exc:
        raise _fail(str(exc)) from None
    report: dict[str, object] = {"corpus": str(corpus), "batch_documents": settings.ingest_batch_documents}
    if raptor:
        folder = raptor_folder or sample_corpus_dir()
        if not folder.is_dir():
            raise _fail(f"--raptor-folder {folder} is not a folder")
        report["raptor_folder"] = str(folder)
        report["raptor"] = _bench_raptor(resources, _sizes_any(raptor_parallel), folder)
    if not throughput:
        _write_ingest_report(settings.reports_dir, report)
        return
    items = list(rows.items())[:limit] if limit else list(rows.items())
    documents = [Document(i, f"{d['title']}\n{d['text']}".strip(), {"title": d["title"] or i}) for i, d in items]
    typer.echo(f"{len(documents)} documents from {corpus}")
    lengths = embedder_token_lengths(embedder.model_dir, [[c.text for c in chunker.chunk(d)] for d in documents])
    padding = padding_by_batch(lengths, PADDING_BATCHES, EMBED_MINI_BATCH)
    report["padding_vs_one_sorted_pass"] = padding
    typer.echo(
        "  padded tokens vs one sorted pass, by documents per embedding call: "
        + ", ".join(f"{size}: {ratio:.3f}" for size, ratio in padding.items())
    )
    embedder.embed([d.text for d in documents[:8]])  # load and warm the model outside every measurement
    before = raw_embedder(embedder, chunker, documents, "raw embedder, before")
    typer.echo(f"  {before.label}: {before.chunks_per_s:.1f} chunks/s")
    with tempfile.TemporaryDirectory(prefix="ragline-bench-") as scratch:
        index = Index(Path(scratch) / "ours", embedder, bm25_config=bm25_config(settings))
        measured = ours(index, chunker, documents, settings.ingest_batch_documents)
        typer.echo(f"  {measured.label}: {measured.chunks_per_s:.1f} chunks/s")
        after = raw_embedder(embedder, chunker, documents, "raw embedder, after")
        typer.echo(f"  {after.label}: {after.chunks_per_s:.1f} chunks/s")
        results = [mean_rate("raw embedder (limit, mean)", [before, after]), measured]
        if baseline:
            tokenize = load_token_counter(resources.generator_dir)
            try:
                results.append(
                    llamaindex_pipeline(
                        documents,
                        embedder.model_dir,
                        Path(scratch) / "llama",
                        settings.chunk_size,
                        settings.chunk_overlap,
                        tokenize,
                    )
                )
                typer.echo(f"  {results[-1].label}: {results[-1].chunks_per_s:.1f} chunks/s")
            except Exception as exc:  # a broken baseline must not discard the rows measured before it
                report["llamaindex_error"] = error = f"{type(exc).__name__}: {exc}"
                typer.echo(f"  LlamaIndex IngestionPipeline failed, left out of the table: {error}")
    limit_rate = results[0].chunks_per_s
    ours_rate = results[1].chunks_per_s
    header = f"{'docs':>7}{'chunks':>8}{'seconds':>9}{'cpu s':>8}{'docs/s':>9}{'chunks/s':>10}{'vs limit':>10}"
    typer.echo(f"\n{'':32}{header}")
    for row in [before, after, *results]:
        typer.echo(
            f"{row.label:32}{row.documents:>7}{row.chunks:>8}{row.seconds:>9.1f}{row.cpu_seconds:>8.1f}"
            f"{row.docs_per_s:>9.1f}{row.chunks_per_s:>10.1f}{row.chunks_per_s / limit_rate:>9.0%}"
        )
    report["raw_runs"] = [before.as_dict(), after.as_dict()]
    report["results"] = [r.as_dict() for r in results]
    report["ours_vs_limit"] = round(ours_rate / limit_rate, 3)
    report["ours_vs_limit_cpu"] = round(results[0].cpu_seconds / max(measured.cpu_seconds, 1e-9), 3)
    typer.echo(f"\nragline vs the raw embedder: {report['ours_vs_limit']:.1%} of its rate (wall)")
    typer.echo(f"  {report['ours_vs_limit_cpu']:.1%} by CPU seconds (raw CPU s / ours CPU s)")
    if baseline:
        report["ours_vs_llamaindex"] = round(ours_rate / results[2].chunks_per_s, 2)
        typer.echo(f"\nragline vs LlamaIndex: {report['ours_vs_llamaindex']}x chunks/s")
    _write_ingest_report(settings.reports_dir, report)


def _sizes_any(text: str) -> list[int]:
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise typer.BadParameter(f"expected positive integers, got {text!r}")
    return values


def _bench_raptor(resources: Resources, parallel: list[int], folder: Path) -> list[dict[str, float | int | str]]:
    """RAPTOR builds of ``folder``, one per ``parallel_documents`` value, each into a fresh index against
    the same vLLM server. The first build warms vLLM's prefix cache for the later ones, so list the value you
    claim is faster first: the comparison then errs against it."""
    import tempfile

    from app.chunking import make_chunker
    from app.cli.common import fail as _fail
    from app.llm import LLMUnavailableError
    from app.resources import bm25_config
    from eval.bench_ingest import raptor_build
    from retrieval.index import Index

    rows = []
    for value in parallel:
        try:
            chunker = make_chunker(resources, "raptor")
        except LLMUnavailableError as exc:
            raise _fail(str(exc)) from None
        chunker.parallel_documents = value  # type: ignore[attr-defined]
        with tempfile.TemporaryDirectory(prefix="ragline-bench-raptor-") as scratch:
            index = Index(Path(scratch), resources.embedder, bm25_config=bm25_config(resources.settings))
            try:
                build = raptor_build(index, chunker, folder, f"raptor, {value} document(s) at once")
            except RuntimeError as exc:
                raise _fail(f"{exc} (a slow, shared vLLM: raise RAGLINE_LLM_TIMEOUT_S)") from None
        typer.echo(
            f"  {build.label}: {build.seconds:.1f} s, {build.llm_calls} LLM calls, {build.summaries} summaries, "
            f"{build.chunks} chunks from {build.documents} documents"
        )
        rows.append(build.as_dict())
    return rows


def _write_ingest_report(reports_dir: Path, report: dict[str, object]) -> None:
    out = reports_dir / f"bench-ingest-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    typer.echo(f"report: {out}")
