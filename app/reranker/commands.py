"""``ragline reranker train|eval``: train a cross-encoder offline and measure it on held-out queries."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.settings import Settings, get_settings

if TYPE_CHECKING:
    from app.reranker.data import MinedPairs
    from app.resources import Resources

reranker_app = typer.Typer(help="Train and evaluate the cross-encoder reranker offline.", no_args_is_help=True)

PAIRS_FILE = "training-pairs.jsonl"


def _fail(message: str) -> typer.Exit:
    from app.cli.common import fail

    return fail(message)


def _default_out(settings: Settings, collection: str) -> Path:
    return settings.resolved_models_dir / f"reranker-{collection}"


def _mine_or_load(out: Path, resume: bool, mine: Any) -> tuple[list[Any], dict[str, int]]:
    """Reuse the pairs of an interrupted run (resuming must see the same data); otherwise mine and save them."""
    from app.reranker.data import load_pairs, save_pairs

    path = out / PAIRS_FILE
    stats_path = out / "training-pairs.stats.json"
    if resume and path.is_file() and stats_path.is_file():
        typer.echo(f"reusing the training pairs in {path}")
        return load_pairs(path), json.loads(stats_path.read_text())
    mined: MinedPairs = mine()
    save_pairs(mined.pairs, path)
    stats = {"queries": mined.queries, "skipped": mined.skipped, "positives": mined.positives}
    stats_path.write_text(json.dumps(stats))
    return mined.pairs, stats


def _held_out_report(
    resources: Resources,
    collection: str,
    out: Path,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    top_n: int,
    k: int,
) -> dict[str, Any]:
    from app.reranker.evaluate import compare, hybrid_lists
    from retrieval.rerank import CrossEncoderReranker

    settings = resources.settings
    reranker = CrossEncoderReranker(
        out,
        max_length=settings.rerank_max_length,
        batch_size=settings.rerank_batch_size,
        backend=settings.rerank_backend,
    )
    lists = hybrid_lists(resources.index, settings, collection, queries, depth=100)
    results = compare(
        lists, queries, qrels, {"hybrid+rerank": reranker}, top_n, ks=sorted({1, k, 100}), weight=settings.rerank_weight
    )
    return {"queries": len(lists), "top_n": top_n, "k": k, "backend": settings.rerank_backend, "results": results}


@reranker_app.command("train")
def train_command(
    beir: Annotated[Path | None, typer.Option(help="Supervised: a BEIR folder (corpus, queries, qrels).")] = None,
    split: Annotated[str, typer.Option(help="Supervised: which qrels/<split>.tsv to train on.")] = "train",
    held_out: Annotated[int, typer.Option(min=0, help="Queries kept out of training and evaluated on.")] = 209,
    synthetic: Annotated[
        bool, typer.Option(help="No labels: vLLM writes a question per sampled chunk of --collection.")
    ] = False,
    questions: Annotated[int, typer.Option(min=2, help="Synthetic: chunks sampled.")] = 300,
    per_chunk: Annotated[
        int, typer.Option(min=1, max=3, help="Synthetic: questions per sampled chunk, each in another style.")
    ] = 1,
    filter_top_k: Annotated[
        int, typer.Option(min=1, help="Synthetic: keep a question only if it retrieves its chunk in the top k.")
    ] = 10,
    collection: Annotated[
        str | None, typer.Option(help="Collection searched for negatives; default beir-<folder> (ingested if needed).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Model folder; default <models_dir>/reranker-<collection>.")] = None,
    base: Annotated[str | None, typer.Option(help="Starting encoder: registry name or folder.")] = None,
    negatives: Annotated[int, typer.Option(min=1, help="Hard negatives per query.")] = 3,
    depth: Annotated[int, typer.Option(min=2, help="Hybrid candidates searched for negatives.")] = 30,
    epochs: Annotated[float, typer.Option(min=0.01)] = 1.0,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    learning_rate: Annotated[float, typer.Option(min=0.0)] = 3e-5,
    max_length: Annotated[int | None, typer.Option(min=16, help="Training tokens; default rerank_max_length.")] = None,
    device: Annotated[str, typer.Option(help="Torch device to train on: cpu, cuda, cuda:1, ...")] = "cpu",
    layers: Annotated[
        int | None, typer.Option(min=1, help="Keep the first N encoder layers (fewer: faster to train and to run).")
    ] = None,
    max_steps: Annotated[int, typer.Option(help="Stop after N steps (-1: all epochs).")] = -1,
    save_steps: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps (resumable).")] = 50,
    seed: Annotated[int, typer.Option(help="Split, sampling and training seed.")] = 13,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in --out if there is one.")] = True,
    k: Annotated[int, typer.Option(min=1, help="Cut-off of the held-out metrics.")] = 10,
) -> None:
    """Fine-tune a CrossEncoder from the MiniLM encoder: supervised (BEIR qrels) or synthetic (vLLM questions).

    Hard negatives come from ragline's own hybrid retrieval. Writes the model, a model card (README.md) with
    held-out metrics and ragline-reranker.json to --out; interrupted runs resume from the last checkpoint.
    """
    from app.cli.common import configure_logging as _configure_logging
    from app.llm import LLMUnavailableError
    from app.model_registry import ModelRole
    from app.reranker.card import training_record, write_record
    from app.reranker.data import beir_queries, mine_pairs, split_queries
    from app.reranker.train import TrainConfig, train_cross_encoder
    from app.resources import ModelMissingError, Resources, resolve_model_dir
    from retrieval.protocols import TextGenerationError

    if (beir is None) == (not synthetic):
        raise typer.BadParameter("give either --beir FOLDER (supervised) or --synthetic --collection NAME")
    _configure_logging()
    settings = get_settings()
    resources = Resources(settings)
    started = time.perf_counter()
    try:
        base_dir = resolve_model_dir(settings, base or settings.embedder, ModelRole.EMBEDDER)
        if beir is not None:
            from app.eval_commands import ensure_corpus_collection
            from eval.beir import load_beir

            dataset = load_beir(beir, split)
            name = collection or f"beir-{beir.resolve().name}"
            ensure_corpus_collection(resources, name, dataset.corpus)
            train_ids, held_ids = split_queries(list(dataset.queries), held_out, seed)
            target = out or _default_out(settings, name)
            target.mkdir(parents=True, exist_ok=True)
            pairs, stats = _mine_or_load(
                target,
                resume,
                lambda: mine_pairs(
                    resources.index,
                    settings,
                    name,
                    beir_queries(dataset.queries, dataset.qrels, train_ids),
                    negatives=negatives,
                    depth=depth,
                ),
            )
            source = f"BEIR {beir.resolve().name} qrels/{split}.tsv: {len(train_ids)} of {len(dataset.queries)} queries"
            held_queries = {qid: dataset.queries[qid] for qid in held_ids}
            held_qrels = {qid: dataset.qrels[qid] for qid in held_ids}
            notes: list[str] = []
        else:
            from app.reranker.synthetic import synthetic_pairs

            if collection is None:
                raise typer.BadParameter("--synthetic needs --collection (an ingested collection)")
            name = collection
            resources.index.require_collection(name)
            target = out or _default_out(settings, name)
            target.mkdir(parents=True, exist_ok=True)
            report: dict[str, Any] = {}

            def mine() -> MinedPairs:
                mined, info = synthetic_pairs(
                    resources,
                    name,
                    questions,
                    filter_top_k=filter_top_k,
                    negatives=negatives,
                    depth=depth,
                    seed=seed,
                    per_chunk=per_chunk,
                )
                report.update(info)
                (target / "synthetic-questions.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
                return mined

            pairs, stats = _mine_or_load(target, resume, mine)
            if not report and (target / "synthetic-questions.json").is_file():
                report = json.loads((target / "synthetic-questions.json").read_text())
            source = (
                f"synthetic: {report.get('generator', '?')} wrote {report.get('generated', '?')} questions for "
                f"sampled chunks of `{name}`; {report.get('kept', '?')} kept (source chunk in the hybrid top "
                f"{filter_top_k})"
            )
            held_queries, held_qrels, held_ids = {}, {}, []
            notes = ["no held-out labels in synthetic mode: evaluate with `ragline reranker eval --beir ...`"]
    except (ModelMissingError, FileNotFoundError, ValueError, LookupError, LLMUnavailableError) as exc:
        raise _fail(str(exc)) from None
    except TextGenerationError as exc:
        raise _fail(f"{exc}; is vLLM running (`ragline llm serve`)?") from None
    positives = int(stats["positives"])
    typer.echo(f"{len(pairs)} training pairs ({positives} positive) from {stats['queries']} queries")
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_length=max_length or settings.rerank_max_length,
        max_steps=max_steps,
        save_steps=save_steps,
        seed=seed,
        device=device,
        layers=layers,
    )
    try:
        result = train_cross_encoder(base_dir, pairs, target, config, resume=resume)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"trained {result.steps} steps in {result.seconds / 60:.1f} min (loss {result.training_loss:.4f})")
    record: dict[str, Any] = {
        "name": target.name,
        "mode": "synthetic" if synthetic else "supervised",
        "base": str(base_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "data": {
            "source": source,
            "collection": name,
            "queries": stats["queries"],
            "skipped": stats.get("skipped", 0),
            "pairs": len(pairs),
            "positives": positives,
            "negatives": len(pairs) - positives,
            "negatives_per_query": negatives,
            "depth": depth,
            "seed": seed,
            "held_out_queries": len(held_ids),
            "notes": notes,
        },
        "training": training_record(config, result),
        "held_out_qids": held_ids,
        "held_out": None,
    }
    write_record(target, record)
    if held_queries:
        record["held_out"] = _held_out_report(
            resources, name, target, held_queries, held_qrels, settings.rerank_top_n, k
        )
        write_record(target, record)
        for variant, scores in record["held_out"]["results"].items():
            typer.echo(f"  {variant:15} nDCG@{k} {scores[f'ndcg@{k}']:.4f}  MRR@{k} {scores[f'mrr@{k}']:.4f}")
    typer.echo(f"reranker: {target} ({(time.perf_counter() - started) / 60:.1f} min); use it with "
               f"RAGLINE_RERANKER={target}")  # fmt: skip


@reranker_app.command("eval")
def eval_command(
    model: Annotated[Path, typer.Argument(help="A reranker folder trained by `ragline reranker train`.")],
    beir: Annotated[Path, typer.Option(help="The BEIR folder the model was trained on.")],
    split: Annotated[str, typer.Option(help="qrels/<split>.tsv holding the held-out queries.")] = "train",
    top_n: Annotated[int | None, typer.Option(min=1, help="Candidates reranked; default rerank_top_n.")] = None,
    backends: Annotated[
        str, typer.Option(help="Engines compared, comma-separated: torch, torch-int8, onnx, onnx-int8.")
    ] = "torch,onnx-int8",
    held_out: Annotated[
        int, typer.Option(min=1, help="Models without recorded held-out queries (synthetic): split this many.")
    ] = 209,
    seed: Annotated[int, typer.Option(help="Seed of that split (the one `reranker train --beir` uses).")] = 13,
    latency_queries: Annotated[int, typer.Option(min=1, help="Queries timed for rerank latency.")] = 30,
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N held-out queries.")] = None,
    k: Annotated[int, typer.Option(min=1)] = 10,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here too.")] = None,
) -> None:
    """nDCG@k of hybrid vs hybrid+rerank on the model's held-out queries, per engine, and rerank latency at top-20/50.

    A supervised model is scored on the queries it recorded as held out. A synthetic model never saw a label, so
    it is scored on the same split a supervised run with ``--held-out``/``--seed`` would hold out: the two compare.
    """
    from app.cli.common import configure_logging as _configure_logging
    from app.reranker.card import read_record, write_record
    from app.reranker.data import split_queries
    from app.reranker.evaluate import compare, hybrid_lists, rerank_latency
    from app.resources import Resources
    from eval.beir import load_beir
    from retrieval.rerank import RERANK_BACKENDS, CrossEncoderReranker, RerankerError

    _configure_logging()
    settings = get_settings()
    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in RERANK_BACKENDS]
    if not chosen or unknown:
        raise typer.BadParameter(f"--backends takes {', '.join(RERANK_BACKENDS)}; got {backends!r}")
    try:
        record = read_record(model)
        dataset = load_beir(beir, split)
        rerankers = {
            f"hybrid+rerank({backend})": CrossEncoderReranker(
                model,
                max_length=settings.rerank_max_length,
                batch_size=settings.rerank_batch_size,
                backend=backend,  # type: ignore[arg-type]
            )
            for backend in dict.fromkeys(chosen)
        }
    except (FileNotFoundError, ValueError, RerankerError) as exc:
        raise _fail(str(exc)) from None
    held = [qid for qid in record.get("held_out_qids", []) if qid in dataset.queries]
    if not held and record.get("mode") == "synthetic":
        try:
            held = split_queries(list(dataset.queries), held_out, seed)[1]
        except ValueError as exc:
            raise _fail(str(exc)) from None
        typer.echo(f"synthetic model: scoring the {len(held)} held-out queries of --held-out {held_out} --seed {seed}")
    if not held:
        raise _fail(f"{model} records no held-out queries of {beir} ({split}); train it with --held-out")
    resources = Resources(settings)
    queries = {qid: dataset.queries[qid] for qid in held[:limit]}
    n = top_n or settings.rerank_top_n
    lists = hybrid_lists(resources.index, settings, record["data"]["collection"], queries, depth=100)
    results = compare(
        lists, queries, dataset.qrels, rerankers, n, ks=sorted({1, k, 100}), weight=settings.rerank_weight
    )
    latency = {
        f"{reranker.backend} top-{depth}": rerank_latency(reranker, lists, queries, depth, latency_queries)
        for depth in (20, 50)
        for reranker in rerankers.values()
    }
    report = {
        "queries": len(lists),
        "top_n": n,
        "k": k,
        "max_length": settings.rerank_max_length,
        "weight": settings.rerank_weight,
        "results": results,
        "latency": latency,
    }
    typer.echo(f"\n{len(lists)} held-out queries, top {n} reranked")
    for variant, scores in results.items():
        typer.echo(f"  {variant:28} nDCG@{k} {scores[f'ndcg@{k}']:.4f}  recall@{k} {scores[f'recall@{k}']:.4f}  "
                   f"MRR@{k} {scores[f'mrr@{k}']:.4f}")  # fmt: skip
    for name, timing in latency.items():
        typer.echo(f"  rerank {name:18} median {timing['median_ms']} ms  p90 {timing['p90_ms']} ms")
    record["held_out"] = report
    write_record(model, record)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = json_out or settings.reports_dir / f"reranker-{model.name}-{stamp}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2))
    typer.echo(f"report: {target}; model card updated: {model / 'README.md'}")
