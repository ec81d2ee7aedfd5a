"""``ragline reranker train | eval``: train a cross-encoder offline and measure it on held-out queries.

Each command parses its flags, calls ``app.reranker.training_run.train_reranker`` or
``app.reranker.evaluation_run.evaluate_reranker`` and prints what it returns.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.common import ConsoleLog, comma_floats, comma_ints, configure_logging, fail
from app.settings import get_settings
from eval.splits import DEFAULT_CHOOSE, DEFAULT_REPORT

app = typer.Typer(help="Train and evaluate the cross-encoder reranker offline.", no_args_is_help=True)


@app.command("train")
def train_command(
    beir: Annotated[Path | None, typer.Option(help="Supervised: a BEIR folder (corpus, queries, qrels).")] = None,
    split: Annotated[str, typer.Option(help="Supervised: which qrels/<split>.tsv to train on.")] = "train",
    choose: Annotated[
        int, typer.Option(min=1, help="Supervised: queries kept out of training to choose settings on.")
    ] = DEFAULT_CHOOSE,
    report: Annotated[
        int, typer.Option(min=1, help="Supervised: queries kept out of training and of every choice, reported on.")
    ] = DEFAULT_REPORT,
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
    negatives: Annotated[int, typer.Option(min=1, help="Hard negatives per query.")] = 15,
    depth: Annotated[int, typer.Option(min=2, help="Hybrid candidates searched for negatives.")] = 50,
    loss: Annotated[
        str, typer.Option(help="lambda (LambdaLoss over each query's list), listnet, ranknet, or bce (pointwise).")
    ] = "lambda",
    epochs: Annotated[float, typer.Option(min=0.01)] = 2.0,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    learning_rate: Annotated[float, typer.Option(min=0.0)] = 5e-5,
    max_length: Annotated[
        int, typer.Option(min=16, help="Training tokens per pair (the model is read at rerank_max_length).")
    ] = 128,
    device: Annotated[str, typer.Option(help="Torch device to train on: cpu, cuda, cuda:1, ...")] = "cpu",
    layers: Annotated[
        int | None, typer.Option(min=1, help="Keep the first N encoder layers (fewer: faster to train and to run).")
    ] = 2,
    max_steps: Annotated[int, typer.Option(help="Stop after N steps (-1: all epochs).")] = -1,
    save_steps: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps (resumable).")] = 50,
    seed: Annotated[int, typer.Option(help="Split, sampling and training seed.")] = 13,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in --out if there is one.")] = True,
    k: Annotated[int, typer.Option(min=1, help="Cut-off of the held-out metrics.")] = 10,
    lengths: Annotated[
        str | None,
        typer.Option(help="Pair lengths tried at the end (comma-separated); default the training length."),
    ] = None,
    refit_of: Annotated[
        Path | None,
        typer.Option(
            help="Supervised: retrain this fit-only model's recipe on fit + choose, scored on report with the "
            "settings chosen for it (its recipe replaces the options above).",
        ),
    ] = None,
) -> None:
    """Fine-tune a CrossEncoder from the MiniLM encoder: supervised (BEIR qrels) or synthetic (vLLM questions).

    The defaults are the recipe measured on SciFact under the choose/report protocol that fits the 150 ms top-20
    budget on two cores (2 layers, 128 tokens, LambdaLoss, 15 negatives from the hybrid top 50, 2 epochs, lr 5e-5;
    refit: +3.1 nDCG@10 on `report`, 142 ms: docs/results/reranker.md); `--layers 3 --lengths 128,192` is the
    slower 3-layer recipe.
    Hard negatives come from ragline's own hybrid retrieval. Supervised runs train on the `fit` part of a seeded
    fit/choose/report split, then choose the pair length and blend on `choose` and report on `report` (both printed).
    Writes the model, a model card (README.md) with those numbers and ragline-reranker.json (the split included) to
    --out; interrupted runs resume from the last checkpoint. `--refit-of MODEL` is the protocol's last step: once
    a recipe and its settings are chosen on `choose`, the same recipe learns from fit + choose and is scored on
    `report` with those settings (nothing chosen again).
    """
    from app.llm import LLMUnavailableError
    from app.reranker.train import LOSSES, TrainConfig
    from app.reranker.training_run import TrainingRequest, train_reranker
    from retrieval.protocols import TextGenerationError

    if (beir is None) == (not synthetic):
        raise typer.BadParameter("give either --beir FOLDER (supervised) or --synthetic --collection NAME")
    if synthetic and collection is None:
        raise typer.BadParameter("--synthetic needs --collection (an ingested collection)")
    if loss not in LOSSES:
        raise typer.BadParameter(f"--loss takes {', '.join(LOSSES)}; got {loss!r}")
    configure_logging()
    settings = get_settings()
    training = TrainConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        max_length=max_length, max_steps=max_steps, save_steps=save_steps, seed=seed,
        device=device, layers=layers, loss=loss,  # type: ignore[arg-type]
    )  # fmt: skip
    request = TrainingRequest(
        training, beir, split, choose, report, comma_ints(lengths, "--lengths"), questions, per_chunk, filter_top_k,
        collection, out, base, negatives, depth, resume, k, refit_of,
    )  # fmt: skip
    try:
        outcome = train_reranker(settings, request, ConsoleLog())
    except (FileNotFoundError, ValueError, LookupError, LLMUnavailableError) as exc:
        raise fail(str(exc)) from None
    except TextGenerationError as exc:
        raise fail(f"{exc}; is vLLM running (`ragline llm serve`)?") from None
    if outcome.record.get("evaluation"):
        _echo_evaluation(outcome.record["evaluation"])
    typer.echo(f"reranker: {outcome.model} ({outcome.minutes:.1f} min)")
    _echo_use(outcome.model, outcome.record)


@app.command("eval")
def eval_command(
    model: Annotated[Path, typer.Argument(help="A reranker folder trained by `ragline reranker train`.")],
    beir: Annotated[Path, typer.Option(help="The BEIR folder the model was trained on.")],
    split: Annotated[str, typer.Option(help="qrels/<split>.tsv holding the choose and report queries.")] = "train",
    top_n: Annotated[
        str,
        typer.Option(
            help="Candidates reranked (the depth); several, comma-separated, are chosen on `choose`. "
            "Default rerank_top_n."
        ),
    ] = "",
    backends: Annotated[
        str, typer.Option(help="Engines timed, comma-separated: torch, torch-int8, onnx, onnx-int8.")
    ] = "torch,onnx-int8",
    lengths: Annotated[
        str, typer.Option(help="Pair lengths tried, comma-separated (chosen on `choose`).")
    ] = "128,192,256",
    context_lengths: Annotated[
        str,
        typer.Option(
            help="Long-context rerank (rerank_mode=long-context) joint lengths tried, comma-separated, as candidates "
            "of the same choice (empty: isolated only)."
        ),
    ] = "",
    weights: Annotated[
        str, typer.Option(help="Blend weights tried, comma-separated (chosen on `choose`).")
    ] = "0.1,0.2,0.3,0.4,0.5,0.6,0.8,1.0",
    alphas: Annotated[
        str, typer.Option(help="Convex-fusion α tried, comma-separated (chosen on `choose`; empty: skip).")
    ] = "0.3,0.4,0.5,0.6,0.7",
    choose: Annotated[
        int, typer.Option(min=1, help="Models without a recorded split (synthetic): queries to choose on.")
    ] = DEFAULT_CHOOSE,
    report: Annotated[
        int, typer.Option(min=1, help="Models without a recorded split (synthetic): queries to report on.")
    ] = DEFAULT_REPORT,
    seed: Annotated[int, typer.Option(help="Seed of that split (the one `reranker train --beir` uses).")] = 13,
    latency_queries: Annotated[int, typer.Option(min=1, help="Queries timed for rerank latency.")] = 30,
    limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N queries of each part.")] = None,
    k: Annotated[int, typer.Option(min=1)] = 10,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here too.")] = None,
) -> None:
    """Rerank mode, pair length, blend weight (or a calibrated blend) and fusion α chosen on the `choose` queries,
    each reported on the `report` queries that no choice used, with a paired bootstrap interval over hybrid;
    rerank latency at top-20/50 beside hybrid search's in the same run.

    A supervised model is scored on the split it recorded. A synthetic model never saw a label, so it is scored on
    the split of ``--choose``/``--report``/``--seed``, the one a supervised run with those values makes.
    """
    from app.reranker.card import read_record
    from app.reranker.evaluation_run import RerankerEvalRequest, evaluate_reranker
    from retrieval.rerank import RERANK_BACKENDS, RerankerError

    configure_logging()
    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    if not chosen or any(b not in RERANK_BACKENDS for b in chosen):
        raise typer.BadParameter(f"--backends takes {', '.join(RERANK_BACKENDS)}; got {backends!r}")
    request = RerankerEvalRequest(
        model, beir, split, chosen, comma_ints(top_n, "--top-n"), choose, report, seed,
        lengths=comma_ints(lengths, "--lengths") or (192,),
        context_lengths=comma_ints(context_lengths, "--context-lengths"),
        weights=comma_floats(weights, "--weights"), alphas=comma_floats(alphas, "--alphas"),
        latency_queries=latency_queries,
        limit=limit, k=k, json_out=json_out,
    )  # fmt: skip
    try:
        evaluation = evaluate_reranker(get_settings(), request, ConsoleLog())
    except (FileNotFoundError, ValueError, RerankerError) as exc:
        raise fail(str(exc)) from None
    _echo_evaluation(evaluation.report)
    typer.echo(f"report: {evaluation.report_path}; model card updated: {evaluation.card}")
    _echo_use(model, read_record(model))


def _echo_evaluation(report: dict[str, Any]) -> None:
    """The side-by-side choose/report tables, then latency as milliseconds and as a ratio to hybrid search."""
    split = report["split"]
    depths = report["top_n"]
    reranked = f"top {depths}" if isinstance(depths, int) else f"top {' or '.join(map(str, depths))} (chosen)"
    typer.echo(f"\nsplit seed {split['seed']}: {split['sizes']}; {reranked} reranked")
    for line in report["printed"]:
        typer.echo(line)
    typer.echo(f"hybrid search p50 {report['hybrid_search_p50_ms']} ms (same run)")
    for name, timing in report["latency"].items():
        ratio = report["rerank_to_search_ratio"].get(name)
        typer.echo(
            f"  rerank {name:18} at {report['latency_length']} tokens: median {timing['median_ms']} ms  "
            f"p90 {timing['p90_ms']} ms  ({ratio}x hybrid search)"
        )


def _echo_use(model: Path, record: dict[str, Any]) -> None:
    """How to run the model as its ``report`` number was measured: its length, depth and weight, which the global
    rerank defaults need not match, as ragline.toml lines and as environment variables."""
    from app.reranker.refit import measured_settings

    measured = measured_settings(record)
    if measured is None:
        typer.echo(f"use it with RAGLINE_RERANKER={model} (no single measured setting to carry: see the table)")
        return
    values: dict[str, object] = {"reranker": str(model), **measured.as_settings()}
    typer.echo("use it as measured, in ragline.toml:")
    for name, value in values.items():
        typer.echo(f"  {name} = {json.dumps(value)}")
    variables = " ".join(f"RAGLINE_{name.upper()}={shlex.quote(str(value))}" for name, value in values.items())
    typer.echo(f"or in the environment: {variables}")
