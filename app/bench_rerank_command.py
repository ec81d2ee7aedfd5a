"""``ragline bench rerank``: what the rerank stage buys and costs, per model and engine, in one process.

Quality and speed are measured on the same candidates: each question's hybrid list is fetched once, then every
variant reorders its head. Quality is nDCG@10 against the question set's gold document ids (hybrid alone is the
baseline row); speed is the median time to rerank the top N, with speed-ups over torch fp32 that hold on a busy
machine where absolute milliseconds do not.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from app.settings import get_settings

DEFAULT_DATASET = Path(__file__).resolve().parent.parent / "eval" / "datasets" / "sample_qa.jsonl"


def _top_ns(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise typer.BadParameter(f"--top-n must be comma-separated integers, got {text!r}") from None
    if not values or values[0] < 1:
        raise typer.BadParameter("--top-n values must be positive")
    return values


def bench_rerank(
    model: Annotated[list[str], typer.Option(help="Reranker: registry name, trained name or folder (repeatable).")],
    collection: Annotated[str, typer.Option(help="Collection the questions are asked of.")] = "sample",
    dataset: Annotated[Path, typer.Option(help="Questions with gold doc ids (JSONL/CSV).")] = DEFAULT_DATASET,
    top_n: Annotated[str, typer.Option(help="Candidates reranked, comma-separated.")] = "20,50",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    max_length: Annotated[int | None, typer.Option(min=16, help="Tokens per pair (default rerank_max_length).")] = None,
    weight: Annotated[float | None, typer.Option(min=0, max=1, help="Blend weight (default rerank_weight).")] = None,
    backends: Annotated[
        str, typer.Option(help="Engines, comma-separated; speed-ups are against the first.")
    ] = "torch,torch-int8,onnx,onnx-int8",
) -> None:
    """nDCG@10 of hybrid vs hybrid+rerank and rerank latency at each top N, for each model on each engine."""
    from app.cli.common import configure_logging as _configure_logging
    from app.cli.common import fail as _fail
    from app.reranker.evaluation_run import hybrid_lists
    from app.resources import Resources, resolve_reranker
    from eval.qa import DatasetError, load_dataset
    from eval.rerank_quality import HYBRID, compare, rerank_latency
    from retrieval.rerank import RERANK_BACKENDS, CrossEncoderReranker

    _configure_logging()
    settings = get_settings()
    engines = list(dict.fromkeys(b.strip() for b in backends.split(",") if b.strip()))
    if not engines or any(b not in RERANK_BACKENDS for b in engines):
        raise typer.BadParameter(f"--backends takes {', '.join(RERANK_BACKENDS)}; got {backends!r}")
    sizes = _top_ns(top_n)
    blend = settings.rerank_weight if weight is None else weight
    length = max_length or settings.rerank_max_length
    try:
        items = [item for item in load_dataset(dataset, limit).items if item.gold_ids]
        if not items:
            raise DatasetError(f"{dataset} has no question with gold document ids")
        resources = Resources(settings)
        resources.index.require_collection(collection)
        variants = {
            f"{Path(name).name} {backend}": CrossEncoderReranker(
                resolve_reranker(settings, name),
                max_length=length,
                batch_size=settings.rerank_batch_size,
                backend=backend,  # type: ignore[arg-type]
            )
            for name in model
            for backend in engines
        }
    except (DatasetError, FileNotFoundError, ValueError, LookupError) as exc:
        raise _fail(str(exc)) from None
    queries = {item.id: item.question for item in items}
    qrels = {item.id: dict.fromkeys(item.gold_ids, 1) for item in items}
    lists = hybrid_lists(resources.index, settings, collection, queries, max(sizes), progress=False)
    quality = compare(lists, queries, qrels, variants, sizes[0], ks=(10,), progress=False, weight=blend)
    latency = {name: {n: rerank_latency(r, lists, queries, n) for n in sizes} for name, r in variants.items()}
    report: dict[str, Any] = {
        "collection": collection,
        "dataset": str(dataset),
        "questions": len(items),
        "max_length": length,
        "weight": blend,
        "quality_top_n": sizes[0],
        "ndcg@10": {name: round(scores["ndcg@10"], 4) for name, scores in quality.items()},
        "latency_ms": latency,
    }
    typer.echo(f"{len(items)} questions on {collection!r}, top {sizes[0]} reranked for quality, weight {blend}")
    header = f"{'variant':34} {'nDCG@10':>8}" + "".join(f" {f'top-{n} ms (p90)':>20}" for n in sizes)
    typer.echo(header)
    typer.echo(f"{HYBRID:34} {report['ndcg@10'][HYBRID]:8.4f}")
    for name in variants:
        cells = "".join(f" {latency[name][n]['median_ms']:>10.1f} ({latency[name][n]['p90_ms']:.1f})" for n in sizes)
        typer.echo(f"{name:34} {report['ndcg@10'][name]:8.4f}{cells}")
    baseline = engines[0]
    ratios = {
        f"{Path(name).name} {backend}": {
            n: round(
                latency[f"{Path(name).name} {baseline}"][n]["median_ms"]
                / latency[f"{Path(name).name} {backend}"][n]["median_ms"],
                2,
            )
            for n in sizes
        }
        for name in model
        for backend in engines[1:]
    }
    report["speedup_vs"] = baseline
    report["speedup"] = ratios
    for name, by_size in ratios.items():
        typer.echo(f"speed-up over {baseline}, {name}: " + ", ".join(f"top-{n} {r}x" for n, r in by_size.items()))
    out = settings.reports_dir / f"bench-rerank-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    typer.echo(f"report: {out}")
