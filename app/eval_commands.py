"""``ragline eval ...``: retrieval evaluation on BEIR-format data (more evaluations join this group)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.settings import get_settings

if TYPE_CHECKING:
    from app.resources import Resources

eval_app = typer.Typer(help="Evaluate retrieval and answers on your data or public benchmarks.", no_args_is_help=True)

PIPELINES = ("bm25", "dense", "hybrid", "hybrid+rerank", "all")
DEFAULT_ALPHAS = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1"


def _parse_alphas(text: str) -> list[float]:
    try:
        alphas = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise typer.BadParameter(f"--alphas must be comma-separated numbers, got {text!r}") from None
    if any(not 0 <= a <= 1 for a in alphas):
        raise typer.BadParameter("every α must be in [0, 1]")
    return alphas


def _resolve_files(
    beir: Path | None, corpus: Path | None, queries: Path | None, qrels: Path | None, split: str
) -> tuple[Path, Path, Path]:
    if beir is not None:
        corpus = corpus or next((beir / n for n in ("corpus.jsonl", "corpus.jsonl.gz") if (beir / n).exists()), None)
        queries = queries or beir / "queries.jsonl"
        qrels = qrels or beir / "qrels" / f"{split}.tsv"
    missing = [name for name, value in (("--corpus", corpus), ("--queries", queries), ("--qrels", qrels)) if not value]
    if missing:
        raise typer.BadParameter(f"give {', '.join(missing)} (or --beir FOLDER holding them)")
    for path in (corpus, queries, qrels):
        if not path.is_file():  # type: ignore[union-attr]
            raise typer.BadParameter(f"{path} does not exist")
    return corpus, queries, qrels  # type: ignore[return-value]


def ensure_corpus_collection(
    resources: Resources,
    name: str,
    corpus: dict[str, dict[str, str]],
    chunker_name: str = "fixed",
    *,
    prune: bool = False,
) -> None:
    """Ingest a BEIR corpus incrementally: unchanged documents (same content hash and chunker signature, which
    holds the chunker's settings) are not embedded again; ``prune`` drops documents no longer in ``corpus``."""
    from app.chunking import make_chunker
    from ingest.document import Document
    from ingest.job import ingest_documents

    documents = (
        Document(doc_id, f"{doc['title']}\n{doc['text']}".strip(), {"title": doc["title"] or doc_id})
        for doc_id, doc in corpus.items()
    )
    chunker = make_chunker(resources, chunker_name)
    summary = ingest_documents(
        resources.index,
        chunker,
        documents,
        name,
        total=len(corpus),
        prune=prune,
        batch_documents=resources.settings.ingest_batch_documents,
    )
    typer.echo(
        f"{name}: {len(summary.added) + len(summary.updated)} indexed, {len(summary.skipped)} unchanged, "
        f"{len(summary.deleted)} removed in {summary.seconds:.0f} s"
    )
    if summary.failed:  # reported, not fatal: a judged document that failed simply cannot be retrieved
        first = next(iter(summary.failed.items()))
        typer.echo(f"{len(summary.failed)} documents not indexed (first: {first[0]}: {first[1]})", err=True)


@eval_app.command("retrieval")
def eval_retrieval(
    corpus: Annotated[Path | None, typer.Option(help="BEIR corpus.jsonl[.gz]: {_id, title, text} per line.")] = None,
    queries: Annotated[Path | None, typer.Option(help="BEIR queries.jsonl: {_id, text} per line.")] = None,
    qrels: Annotated[Path | None, typer.Option(help="TSV with header query-id corpus-id score.")] = None,
    beir: Annotated[Path | None, typer.Option(help="A BEIR folder (instead of the three files).")] = None,
    split: Annotated[str, typer.Option(help="With --beir: which qrels/<split>.tsv.")] = "test",
    pipeline: Annotated[
        str, typer.Option(help="bm25 | dense | hybrid | hybrid+rerank (RAGLINE_RERANKER) | all (variants + α sweep).")
    ] = "all",
    k: Annotated[int, typer.Option(min=1, help="Cut-off of the headline metrics.")] = 10,
    depth: Annotated[int, typer.Option(min=10, help="Candidates fetched from each search.")] = 100,
    alphas: Annotated[str, typer.Option(help="Convex-fusion weights to sweep (pipeline all).")] = DEFAULT_ALPHAS,
    collection: Annotated[
        str | None, typer.Option(help="Collection to (re)use; default beir-<folder>[-chunker].")
    ] = None,
    chunker: Annotated[str, typer.Option(help="fixed | semantic | semantic-cluster | raptor.")] = "fixed",
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N judged queries.")] = None,
    corpus_sample: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Index only N documents: all judged for the evaluated queries plus a seeded sample of the rest "
            "(same subset for every chunker). For slow chunkers on a small machine.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of --corpus-sample.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
) -> None:
    """nDCG@k, Recall@k, Recall@100, MRR@k, P@k and latency for BM25, dense and hybrid retrieval.

    The corpus is ingested incrementally into a collection (content hashes): a second run re-embeds nothing.
    A document's score is its best chunk's score. Only queries present in the qrels are evaluated. The collection
    name holds the chunker and the subset, and each document's hash the chunker's settings, so a cached collection
    is reused only for the same corpus, chunker and settings.
    """
    from app.chunking import CHUNKERS
    from app.cli.common import configure_logging as _configure_logging
    from app.cli.common import fail as _fail
    from app.llm import LLMUnavailableError
    from app.resources import ModelMissingError, Resources
    from eval.beir import load_corpus, load_qrels, load_queries
    from eval.corpus_subset import corpus_subset
    from eval.retrieval_bench import (
        best_alpha,
        evaluate_variants,
        format_table,
        gather,
        latency_summary,
        standard_variants,
    )

    if pipeline not in PIPELINES:
        raise typer.BadParameter(f"--pipeline must be one of {', '.join(PIPELINES)}")
    if chunker not in CHUNKERS:
        raise typer.BadParameter(f"--chunker must be one of {', '.join(CHUNKERS)}")
    _configure_logging()
    settings = get_settings()
    sweep = _parse_alphas(alphas) if pipeline == "all" else []
    corpus_path, queries_path, qrels_path = _resolve_files(beir, corpus, queries, qrels, split)
    try:
        documents_by_id = load_corpus(corpus_path)
        judged = load_qrels(qrels_path)
        texts = load_queries(queries_path)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    missing = sorted(set(judged) - set(texts))
    if missing:
        raise _fail(f"{len(missing)} judged queries are not in {queries_path} (first: {missing[0]})")
    selected = {qid: texts[qid] for qid in judged}
    if limit:
        selected = dict(list(selected.items())[:limit])
    name = collection or f"beir-{corpus_path.resolve().parent.name}" + ("" if chunker == "fixed" else f"-{chunker}")
    subset: dict[str, object] | None = None
    if corpus_sample is not None:
        try:
            kept = corpus_subset(documents_by_id, {q: judged[q] for q in selected}, corpus_sample, seed)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        documents_by_id = {doc_id: documents_by_id[doc_id] for doc_id in kept}
        subset = {"documents": len(kept), "seed": seed, "rule": "judged for the evaluated queries + seeded sample"}
        if collection is None:
            name += f"-sample{corpus_sample}-seed{seed}" + (f"-q{limit}" if limit else "")
        typer.echo(f"corpus subset: {len(kept)} documents (every judged one + seed-{seed} sample) → {name}")
    try:
        resources = Resources(settings)
        ensure_corpus_collection(resources, name, documents_by_id, chunker, prune=subset is not None)
    except (ModelMissingError, ValueError, LLMUnavailableError) as exc:
        raise _fail(str(exc)) from None

    candidates = gather(resources.index, name, selected, depth)
    variants = standard_variants(settings.rrf_k, sweep)
    hybrid = f"rrf(k={settings.rrf_k})" if settings.fusion == "rrf" else f"convex(α={settings.fusion_alpha:.2f})"
    if pipeline != "all":
        chosen = {"bm25": "bm25", "dense": "dense"}.get(pipeline, hybrid)
        if chosen not in variants:
            variants = standard_variants(settings.rrf_k, [settings.fusion_alpha])
        variants = {chosen: variants[chosen]}
        if pipeline == "hybrid+rerank":
            from app.reranker.evaluate import rerank_variant

            try:
                reranker = resources.reranker
            except ValueError as exc:
                raise _fail(str(exc)) from None
            if reranker is None:
                raise _fail("--pipeline hybrid+rerank needs RAGLINE_RERANKER (train one: `ragline reranker train`)")
            variants.update(
                rerank_variant(
                    reranker,
                    candidates,
                    selected,
                    variants[chosen],
                    settings.rerank_top_n,
                    weight=settings.rerank_weight,
                )
            )
    ks = sorted({1, k, 10, 100})
    results = evaluate_variants(candidates, judged, variants, ks)
    columns = [f"ndcg@{k}", f"recall@{k}", "recall@100", f"mrr@{k}", f"p@{k}"]
    typer.echo(f"\n{corpus_path.parent.name}: {len(selected)} judged queries, depth {depth}\n")
    typer.echo(format_table(results, columns))
    latency = latency_summary(candidates)
    report: dict[str, object] = {
        "corpus": str(corpus_path),
        "qrels": str(qrels_path),
        "queries": len(selected),
        "depth": depth,
        "chunker": chunker,
        "chunk_size": settings.chunk_size,
        "collection": name,
        "corpus_documents": len(documents_by_id),
        "corpus_subset": subset,
        "bm25": resources.index.bm25_config.as_dict(),
        "results": results,
        "latency_ms": latency,
    }
    if sweep:
        alpha, score = best_alpha(results, f"ndcg@{k}")
        rrf = results[f"rrf(k={settings.rrf_k})"][f"ndcg@{k}"]
        winner = "convex" if score > rrf else "rrf"
        report["best"] = {"alpha": alpha, "convex": score, "rrf": rrf, "winner": winner, "metric": f"ndcg@{k}"}
        typer.echo(f"\nbest α = {alpha:.2f} (nDCG@{k} {score:.4f}); RRF {rrf:.4f} → {winner} wins")
    typer.echo("search latency (ms): " + ", ".join(f"{key} {value}" for key, value in latency.items()))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = json_out or settings.reports_dir / f"retrieval-{corpus_path.parent.name}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    typer.echo(f"report: {out}")
