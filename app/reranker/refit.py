"""The last step of the fit/choose/report protocol: the chosen recipe retrained on ``fit`` and ``choose`` together.

Once a recipe and its settings (pair length, rerank depth, blend weight) are chosen on ``choose`` with a model that
learned on ``fit`` only, nothing is left to choose, and the ``choose`` queries are more labels to learn from (609
instead of 459 on SciFact). The refit keeps everything its fit-only twin's record says (loss, layers, negatives,
epochs, split, seed) and the settings chosen for that twin; ``report`` stays untouched, so its number is still a
number on queries that neither trained the model nor chose anything. The refit's own ``choose`` column is then
training data and is labelled so, never used to choose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.reranker.card import LOSS_NAMES, read_record
from app.reranker.train import TrainConfig
from eval.rerank_selection import candidate_parts

__all__ = ["FixedSettings", "fixed_settings", "measured_settings", "refit_recipe"]


@dataclass(frozen=True)
class FixedSettings:
    """The rerank settings a refit is scored with: the ones chosen on ``choose`` for its fit-only twin."""

    mode: str
    """``isolated`` (one pass per pair) or ``long-context`` (joint passages)."""
    length: int
    top_n: int
    weight: float

    @property
    def label(self) -> str:
        """The candidate's name in a selection over this one length and depth (``len=192 w=0.3``)."""
        return f"{'len' if self.mode == 'isolated' else 'long'}={self.length} w={self.weight:.1f}"

    def as_record(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def as_settings(self) -> dict[str, object]:
        """The ragline settings that run a rerank as this one was measured (``reranker`` itself aside): a model
        chosen at 128 tokens and depth 30 is slower and unmeasured at the global defaults' 192 tokens."""
        length_setting = "rerank_max_length" if self.mode == "isolated" else "rerank_context_tokens"
        return {
            "rerank_mode": self.mode,
            length_setting: self.length,
            "rerank_top_n": self.top_n,
            "rerank_weight": self.weight,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> FixedSettings:
        return cls(str(record["mode"]), int(record["length"]), int(record["top_n"]), float(record["weight"]))


def fixed_settings(evaluation: Mapping[str, Any]) -> FixedSettings:
    """The chosen candidate of a fit-only model's evaluation (``len=192 n=30 w=0.3``, ``long=512 w=0.4``) as
    settings. ``ValueError`` when there is nothing to refit: hybrid alone won, or a calibrated blend won (its
    calibration was fitted on ``choose``, which a refit trains on)."""
    chosen = str(evaluation["overall"]["chosen"])
    parts = candidate_parts(chosen)
    if "len" not in parts and "long" not in parts:
        raise ValueError(f"the fit-only model's evaluation chose {chosen!r}: no reranker setting to refit with")
    if "w" not in parts:
        raise ValueError(
            f"the fit-only model's evaluation chose {chosen!r}, a calibrated blend fitted on `choose`; a refit "
            "trains on `choose`, so refit only a blend-weight choice (evaluate it with --weights and no calibration)"
        )
    mode = "isolated" if "len" in parts else "long-context"
    length = int(parts.get("len") or parts["long"])
    depths = evaluation["top_n"]
    top_n = int(parts["n"]) if "n" in parts else int(depths if isinstance(depths, int) else depths[0])
    return FixedSettings(mode, length, top_n, float(parts["w"]))


def measured_settings(record: Mapping[str, Any]) -> FixedSettings | None:
    """The settings a trained model's ``report`` number was measured with: a refit's fixed ones, or the candidate
    chosen on ``choose`` for a fit-only model. ``None`` when there is no such single setting (not evaluated yet,
    hybrid alone won, or a calibrated blend won: its coefficients live in the evaluation, not in settings)."""
    if record.get("refit_of"):
        return FixedSettings.from_record(record["refit_of"])
    evaluation = record.get("evaluation")
    if not evaluation or "overall" not in evaluation:
        return None
    try:
        return fixed_settings(evaluation)
    except ValueError:
        return None


def refit_recipe(twin: Path, device: str) -> tuple[dict[str, Any], TrainConfig, FixedSettings]:
    """The fit-only ``twin``'s record, its training recipe (on ``device``) and its chosen settings. Raises
    ``FileNotFoundError`` (no record) or ``ValueError`` (a record that holds no supervised split or no choice)."""
    record = read_record(twin)
    if record.get("refit_of"):
        raise ValueError(f"{twin} is itself a refit; refit from the fit-only model it names")
    if record.get("mode") != "supervised" or "split" not in record.get("data", {}):
        raise ValueError(f"{twin} was not trained on a fit/choose/report split (`ragline reranker train --beir`)")
    if not record.get("evaluation"):
        raise ValueError(f"{twin} has no choose/report evaluation yet: run `ragline reranker eval {twin} --beir ...`")
    names = {description: key for key, description in LOSS_NAMES.items()}
    recorded = record["training"]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    recipe = {key: value for key, value in recorded.items() if key in fields}
    recipe["loss"] = names.get(recorded["loss"], recorded["loss"])
    recipe["device"] = device
    return record, TrainConfig(**recipe), fixed_settings(record["evaluation"])
