"""Fine-tune a CrossEncoder from the shipped MiniLM encoder with the sentence-transformers trainer.

The MiniLM bi-encoder's BERT weights start the cross-encoder (a fresh one-logit head on top); binary
cross-entropy on (query, passage, 0/1) pairs with hard negatives is the standard reranker recipe, and it needs
no in-batch tricks, so it trains in small CPU batches. Checkpoints go to ``<out>/checkpoints`` every
``save_steps``; a rerun with ``resume`` continues from the last one instead of starting over.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from app.reranker.data import Pair

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
Loss = Literal["bce", "lambda", "listnet", "ranknet"]
"""Pointwise binary cross-entropy, or a loss over each query's whole candidate list: LambdaLoss (NDCG-weighted
pairwise, NDCGLoss2++), ListNet (softmax cross-entropy over the list) or RankNet (pairwise logistic margin)."""
LOSSES: tuple[str, ...] = get_args(Loss)


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 3e-5
    max_length: int = 256
    max_steps: int = -1
    """Stop after this many optimiser steps (-1: run the epochs)."""
    save_steps: int = 50
    warmup: float = 0.1
    seed: int = 13
    device: str = "cpu"
    """Where to train; a GPU runs the same recipe in about a minute where two CPU cores take hours."""
    layers: int | None = None
    """Keep only the first N transformer layers of the base encoder (None: all). Half the layers costs half the
    time per pair, in training and at query time, which is what makes CPU training and a fast rerank possible."""
    loss: Loss = "bce"
    """A list loss trains on each query's positives and negatives together (``batch_size`` still counts pairs: a
    batch holds as many whole lists as make about that many pairs), so a step costs what a BCE step costs."""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    steps: int
    seconds: float
    training_loss: float
    resumed_from: str | None


def last_checkpoint(out: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / CHECKPOINTS
    found = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    return Path(found) if found else None


def truncate_layers(model: object, layers: int) -> None:
    """Drop every transformer layer after the first ``layers`` of a BERT-style model, config included, so the saved
    folder loads as the smaller model."""
    encoder = getattr(getattr(model, "base_model", None), "encoder", None)
    blocks = getattr(encoder, "layer", None)
    if blocks is None:
        raise ValueError(f"cannot truncate layers of {type(model).__name__}: no base_model.encoder.layer")
    if not 1 <= layers <= len(blocks):
        raise ValueError(f"layers must be between 1 and {len(blocks)} for this encoder, got {layers}")
    encoder.layer = blocks[:layers]
    model.config.num_hidden_layers = layers  # type: ignore[attr-defined]


def train_cross_encoder(
    base: Path,
    pairs: Sequence[Pair],
    out: Path,
    config: TrainConfig,
    *,
    resume: bool = True,
    progress: bool = True,
    keep_checkpoints: bool = False,
) -> TrainResult:
    """Train on ``pairs`` from ``base`` (a sentence-transformers encoder or CrossEncoder folder) and save to ``out``."""
    import torch
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    positives = sum(1 for p in pairs if p.label > 0)
    if positives == 0 or positives == len(pairs):
        raise ValueError(f"training needs positive and negative pairs; got {positives} of {len(pairs)} positive")
    model = CrossEncoder(
        str(base), num_labels=1, max_length=config.max_length, device=config.device, local_files_only=True
    )
    if config.layers is not None:
        truncate_layers(model.model, config.layers)
    if config.loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {config.loss!r}")
    if config.loss == "bce":
        dataset = _pair_dataset(pairs)
        # Weighting positives by the negative ratio keeps the loss from being won by always saying "irrelevant".
        loss: Any = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor((len(pairs) - positives) / positives))
        batch_size = config.batch_size
    else:
        dataset, batch_size = _list_dataset(pairs, config.batch_size)
        loss = _list_loss(config.loss, model)
    args = CrossEncoderTrainingArguments(
        output_dir=str(out / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=10,
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=config.device == "cpu",
        bf16=config.device.startswith("cuda"),
        report_to="none",
        disable_tqdm=not progress,
    )
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    checkpoint = last_checkpoint(out) if resume else None
    if checkpoint is not None:
        log.info("resuming from %s", checkpoint)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - started
    model.save_pretrained(str(out))
    _export_onnx(out)
    if not keep_checkpoints:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return TrainResult(
        steps=int(output.global_step),
        seconds=seconds,
        training_loss=float(output.training_loss),
        resumed_from=checkpoint.name if checkpoint else None,
    )


def _export_onnx(out: Path) -> None:
    """The fp32 and int8 ONNX exports of the new weights, made now so the first query through the onnx backends
    (the default) does not pay for them. A failed export does not throw away the training: loading the reranker
    with an onnx backend retries it and fails there with the reason."""
    from retrieval.onnx_export import OnnxExportError, ensure_export

    try:
        ensure_export(out, ("fp32", "int8"), head="logits")
    except (OnnxExportError, OSError, RuntimeError) as exc:
        log.warning("trained %s, but its ONNX export failed (%s); the torch backends still work", out, exc)


def group_by_query(pairs: Sequence[Pair]) -> list[tuple[str, list[str], list[float]]]:
    """Each query's passages and labels, queries in first-seen order; a list loss needs a positive and a negative
    in a list to learn anything from it, so lists without both are dropped."""
    grouped: dict[str, tuple[list[str], list[float]]] = {}
    for pair in pairs:
        passages, labels = grouped.setdefault(pair.query, ([], []))
        passages.append(pair.passage)
        labels.append(pair.label)
    return [(q, p, labels) for q, (p, labels) in grouped.items() if max(labels) > 0 and min(labels) <= 0]


def _pair_dataset(pairs: Sequence[Pair]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict(
        {"query": [p.query for p in pairs], "passage": [p.passage for p in pairs], "label": [p.label for p in pairs]}
    )


def _list_dataset(pairs: Sequence[Pair], pairs_per_batch: int) -> tuple[Any, int]:
    """(query, [passages], [labels]) rows and the number of lists per batch that makes about ``pairs_per_batch``
    pairs, so a list-loss step costs what a BCE step of ``pairs_per_batch`` costs."""
    from datasets import Dataset

    groups = group_by_query(pairs)
    if not groups:
        raise ValueError("a list loss needs queries with both a positive and a negative passage")
    mean_list = sum(len(p) for _, p, _ in groups) / len(groups)
    dataset = Dataset.from_dict(
        {"query": [q for q, _, _ in groups], "docs": [p for _, p, _ in groups], "labels": [lb for _, _, lb in groups]}
    )
    return dataset, max(1, round(pairs_per_batch / mean_list))


def _list_loss(name: str, model: Any) -> Any:
    from sentence_transformers.cross_encoder.losses import LambdaLoss, ListNetLoss, RankNetLoss

    if name == "lambda":
        return LambdaLoss(model)
    if name == "listnet":
        return ListNetLoss(model)
    return RankNetLoss(model)
