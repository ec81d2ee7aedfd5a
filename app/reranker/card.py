"""The model card (README.md) and machine-readable record (ragline-reranker.json) of a trained reranker.

A reranker trained on the user's own machine has no hub page; the card is where anyone later finds out what it
was trained on, for how long, and how much it helped on queries it never saw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.reranker.sample import TRAINED_RECORD
from app.reranker.train import TrainConfig, TrainResult

RECORD = TRAINED_RECORD
CARD = "README.md"


def read_record(folder: Path) -> dict[str, Any]:
    path = folder / RECORD
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {RECORD}: it was not trained by `ragline reranker train`")
    return json.loads(path.read_text(encoding="utf-8"))


LOSS_NAMES = {
    "bce": "BinaryCrossEntropyLoss (pos_weight = negatives / positives)",
    "lambda": "LambdaLoss (NDCGLoss2++ weighting) over each query's list",
    "listnet": "ListNetLoss over each query's list",
    "ranknet": "RankNetLoss (pairwise) over each query's list",
}


def training_record(config: TrainConfig, result: TrainResult) -> dict[str, Any]:
    """The record's ``training`` section: the recipe as configured and what the run did."""
    return {
        **config.as_dict(),
        "loss": LOSS_NAMES[config.loss],
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "training_loss": result.training_loss,
        "resumed_from": result.resumed_from,
    }


TRAINING_KEYS = {"loss", "steps", "epochs", "batch_size", "learning_rate", "max_length", "seconds", "training_loss"}


def write_record(folder: Path, record: dict[str, Any]) -> None:
    """Write the JSON record and render the card from it (the card never says what the record does not)."""
    (folder / RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    (folder / CARD).write_text(render_card(record), encoding="utf-8")


def _table(results: dict[str, dict[str, float]], columns: list[str]) -> list[str]:
    lines = ["| variant | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, scores in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{scores.get(c, float('nan')):.4f}" for c in columns) + " |")
    return lines


def render_card(record: dict[str, Any]) -> str:
    data, training = record["data"], record["training"]
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: text-ranking",
        "tags: [cross-encoder, reranker, ragline]",
        "---",
        "",
        f"# {record['name']}",
        "",
        f"A cross-encoder reranker trained by `ragline reranker train` ({record['mode']} mode)",
        f"from `{record['base']}`.",
        "It outputs one relevance score (sigmoid, 0..1) per (query, passage) pair; load it with",
        "`sentence_transformers.CrossEncoder(folder)` or set `RAGLINE_RERANKER` to this folder.",
        "",
        "## Training data",
        "",
        f"- source: {data['source']}",
    ]
    # Records written outside `ragline reranker train` (a one-off GPU run) may lack the mining details.
    if "collection" in data:
        mining = f"- collection searched for hard negatives: `{data['collection']}` (ragline hybrid retrieval"
        if "negatives_per_query" in data and "depth" in data:
            mining += f", {data['negatives_per_query']} negatives per query from the top {data['depth']}"
        lines.append(mining + ")")
    if "queries" in data:
        skipped = data.get("skipped", 0)
        lines.append(f"- training queries: {data['queries']} ({skipped} skipped without a positive passage)")
    if "pairs" in data:
        negatives = data.get("negatives", data["pairs"] - data.get("positives", 0))
        lines.append(f"- pairs: {data['pairs']} ({data.get('positives', '?')} positive, {negatives} negative)")
    if data.get("held_out_queries"):
        lines.append(f"- held-out queries (never trained on): {data['held_out_queries']} (split seed {data['seed']})")
    for note in data.get("notes", []):
        lines.append(f"- {note}")
    lines += ["", "## Training", ""]
    if training.keys() >= TRAINING_KEYS:
        lines += [
            f"- loss: {training['loss']}",
            f"- steps: {training['steps']}, epochs: {training['epochs']}, batch size: {training['batch_size']}, "
            f"learning rate: {training['learning_rate']}, max length: {training['max_length']} tokens",
            f"- wall time: {training['seconds'] / 60:.1f} min on {training.get('device', 'cpu')}"
            + (f" (resumed from {training['resumed_from']})" if training.get("resumed_from") else ""),
            f"- final training loss: {training['training_loss']:.4f}",
        ]
    else:  # a record from outside `ragline reranker train`: show what it holds, as it holds it
        lines += [f"- {key}: {value}" for key, value in training.items()]
    evaluation = record.get("evaluation")
    if evaluation:
        lines += ["", *_evaluation_lines(evaluation)]
        lines.append("")
        return "\n".join(lines)
    held_out = record.get("held_out")
    lines += ["", "## Held-out evaluation", ""]
    if not held_out:
        lines.append("Not evaluated (no held-out queries).")
    else:
        k = held_out.get("k", 10)
        lines.append(
            f"{held_out['queries']} held-out queries; the reranker rescores the top {held_out['top_n']} "
            "hybrid candidates of the same lists."
        )
        lines.append("")
        lines += _table(held_out["results"], [f"ndcg@{k}", f"recall@{k}", f"mrr@{k}", "ndcg@1"])
        for name, latency in held_out.get("latency", {}).items():
            lines.append("")
            lines.append(f"- rerank latency {name}: median {latency['median_ms']} ms, p90 {latency['p90_ms']} ms")
    lines.append("")
    return "\n".join(lines)


def _evaluation_lines(evaluation: dict[str, Any]) -> list[str]:
    """The fit/choose/report evaluation: every candidate's choose and report nDCG, the winner and its report gain."""
    split, overall = evaluation["split"], evaluation["overall"]
    k = evaluation.get("k", 10)
    report_gain = overall["gain_over_baseline"]["report"]
    fixed = bool(overall.get("fixed"))
    how = (
        "trained on `fit` and `choose` (a refit: the settings were fixed beforehand, chosen on `choose` for the "
        "fit-only model, so this card's `choose` column is not held out)"
        if fixed
        else "trained on `fit`, every setting chosen on `choose`"
    )
    lines = [
        "## Choose / report evaluation",
        "",
        f"Split seed {split['seed']}, sizes {split['sizes']}: {how}, the number to quote from `report` (used for no "
        f"choice). Top {_depths(evaluation['top_n'])} hybrid candidates reranked.",
        "",
        f"| candidate | choose nDCG@{k} | report nDCG@{k} |",
        "|---|---:|---:|",
    ]
    for name, scores in overall["table"].items():
        mark = (" (fixed)" if fixed else " (chosen)") if name == overall["chosen"] else ""
        lines.append(f"| {name}{mark} | {scores['choose']:.4f} | {scores['report']:.4f} |")
    lines += [
        "",
        f"- {'fixed' if fixed else 'chosen'}: {overall['chosen']}; on `report` {100 * report_gain['mean']:+.1f} "
        f"points over hybrid (95% paired bootstrap {100 * report_gain['low']:+.1f} to "
        f"{100 * report_gain['high']:+.1f})",
    ]
    for name, latency in evaluation.get("latency", {}).items():
        lines.append(
            f"- rerank latency {name} at {evaluation.get('latency_length')} tokens: median {latency['median_ms']} ms, "
            f"p90 {latency['p90_ms']} ms (hybrid search p50 {evaluation.get('hybrid_search_p50_ms')} ms, same run)"
        )
    return lines


def _depths(top_n: int | list[int]) -> str:
    """One rerank depth, or the depths chosen among (``20 or 30, chosen on `choose```)."""
    return str(top_n) if isinstance(top_n, int) else " or ".join(map(str, top_n)) + ", chosen on `choose`,"
