"""``ragline eval ...``: retrieval evaluation on BEIR-format data (more evaluations join this group)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from app.settings import get_settings

eval_app = typer.Typer(help="Evaluate retrieval and answers on your data or public benchmarks.", no_args_is_help=True)


def _parse_alphas(text: str) -> list[float]:
    try:
        alphas = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise typer.BadParameter(f"--alphas must be comma-separated numbers, got {text!r}") from None
    if any(not 0 <= a <= 1 for a in alphas):
        raise typer.BadParameter("every α must be in [0, 1]")
    return alphas


@eval_app.command("retrieval")
def eval_retrieval(
    beir: Annotated[Path, typer.Option(help="Folder with corpus.jsonl(.gz), queries.jsonl and qrels/<split>.tsv.")],
    split: Annotated[str, typer.Option(help="Which qrels split to evaluate.")] = "train",
    collection: Annotated[str | None, typer.Option(help="Collection to (re)use; default beir-<folder name>.")] = None,
    depth: Annotated[int, typer.Option(min=10, help="Candidates fetched from each search.")] = 100,
    alphas: Annotated[
        str, typer.Option(help="Convex-fusion weights to sweep.")
    ] = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1",
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N queries.")] = None,
) -> None:
    """nDCG@10, Recall, P and MRR for bm25, dense, RRF and convex fusion at each α, from one search pass."""
    from app.cli import _configure_logging, _fail, _make_chunker
    from app.resources import ModelMissingError, Resources
    from eval.beir import load_beir
    from eval.retrieval_bench import (
        best_alpha,
        evaluate_variants,
        format_table,
        gather,
        latency_summary,
        standard_variants,
    )
    from ingest.document import Document
    from ingest.job import ingest_documents

    _configure_logging()
    settings = get_settings()
    sweep = _parse_alphas(alphas)
    try:
        dataset = load_beir(beir, split)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    name = collection or f"beir-{beir.resolve().name}"
    try:
        resources = Resources(settings)
        documents = (
            Document(doc_id, f"{doc['title']}\n{doc['text']}".strip(), {"title": doc["title"] or doc_id})
            for doc_id, doc in dataset.corpus.items()
        )
        summary = ingest_documents(
            resources.index, _make_chunker(settings, "fixed"), documents, name, total=len(dataset.corpus)
        )
    except ModelMissingError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{name}: {len(summary.added) + len(summary.updated)} indexed, {len(summary.skipped)} unchanged")
    queries = dict(list(dataset.queries.items())[:limit]) if limit else dataset.queries
    candidates = gather(resources.index, name, queries, depth)
    results = evaluate_variants(candidates, dataset.qrels, standard_variants(settings.rrf_k, sweep))
    columns = ["ndcg@10", "recall@10", "mrr@10", "p@1"]
    typer.echo(f"\n{dataset.name} {split}: {len(queries)} queries, depth {depth}\n")
    typer.echo(format_table(results, columns))
    report: dict[str, object] = {
        "dataset": str(beir),
        "split": split,
        "queries": len(queries),
        "depth": depth,
        "chunk_size": settings.chunk_size,
        "results": results,
        "latency": latency_summary(candidates),
    }
    if sweep:
        alpha, score = best_alpha(results)
        rrf = results[f"rrf(k={settings.rrf_k})"]["ndcg@10"]
        winner = "convex" if score > rrf else "rrf"
        report["best"] = {"alpha": alpha, "convex_ndcg@10": score, "rrf_ndcg@10": rrf, "winner": winner}
        typer.echo(f"\nbest α = {alpha:.2f} (nDCG@10 {score:.4f}); RRF {rrf:.4f} → {winner} wins")
    typer.echo(f"search latency p50: {latency_summary(candidates)}")
    out = settings.reports_dir / f"retrieval-{dataset.name}-{split}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    typer.echo(f"report: {out}")
