"""Named sets of pipeline configs for ``ragline eval qa --preset``.

The ablation adds one component at a time on the same questions: bm25 → dense → hybrid → +rerank →
+positioning → +compression → +memory. Every config is built only from fields the running ``Settings`` has, so
the preset works on a build where some components do not exist yet; a step whose setting is missing, or whose
model is not available, is reported as skipped with the reason instead of silently running as its predecessor.
The caller passes in what it knows about models (the registry's names, the models folder): eval never imports app.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PresetConfig", "SkippedConfig", "ablation", "build_preset"]

PRESETS = ("ablation",)

# What each component is set to while it is "not yet added": the baseline of the ablation.
_OFF: dict[str, Any] = {"reranker": None, "positioning": "relevance", "compression": "off", "memory": False}
COMPRESSION_METHOD = "llmlingua"
"""Ablated compression method: it uses the provisioned small LM; ``auto`` would not compress a 4-chunk context."""


@dataclass(frozen=True)
class PresetConfig:
    """One config of a preset: its name, the ``Settings`` overrides and a note for the report."""

    name: str
    options: dict[str, Any]
    note: str = ""


@dataclass(frozen=True)
class SkippedConfig:
    """A step the preset could not build on this installation, and why."""

    name: str
    reason: str


@dataclass
class Preset:
    """The configs a preset runs, in order, and the steps it had to skip."""

    configs: list[PresetConfig] = field(default_factory=list)
    skipped: list[SkippedConfig] = field(default_factory=list)


def _reranker_available(name: str, models_dir: Path | None, registered_models: Collection[str]) -> str | None:
    """``None`` when ``name`` is in ``registered_models``, a folder, or a model trained into ``models_dir``; else
    why not.

    A CrossEncoder folder holds a ``config.json``; a folder without one is a training run still in progress.
    """
    if name in registered_models:
        return None
    for folder in (Path(name), *([models_dir / name] if models_dir else [])):
        if folder.is_dir():
            if (folder / "config.json").is_file():
                return None
            return f"reranker folder {folder} has no config.json (is its training finished?)"
    return f"reranker {name!r} is neither a registered model nor a folder (train one: `ragline reranker train`)"


def ablation(
    fields: Mapping[str, Any],
    reranker: str | None,
    models_dir: Path | None = None,
    registered_models: Collection[str] = (),
) -> Preset:
    """The cumulative ablation for a ``Settings`` class whose ``model_fields`` are ``fields``; ``reranker`` is
    accepted when it names one of ``registered_models`` or a finished model folder (as is, or in ``models_dir``).

    bm25-only and dense-only are convex fusion at α = 0 and α = 1: with min-max normalised scores a list weighted
    0 adds nothing, so the fused ranking is exactly the other list's ranking (``retrieval/fusion.py``).
    """
    preset = Preset()
    base = {name: value for name, value in _OFF.items() if name in fields}
    preset.configs += [
        PresetConfig("bm25", {**base, "fusion": "convex", "fusion_alpha": 0.0}, "convex fusion, α = 0"),
        PresetConfig("dense", {**base, "fusion": "convex", "fusion_alpha": 1.0}, "convex fusion, α = 1"),
        PresetConfig("hybrid", dict(base), "the configured fusion"),
    ]
    current = dict(base)
    steps: list[tuple[str, str, Any]] = [
        ("+rerank", "reranker", reranker),
        ("+positioning", "positioning", "edge"),
        ("+compression", "compression", COMPRESSION_METHOD),
        ("+memory", "memory", True),
    ]
    for name, setting, value in steps:
        if setting not in fields:
            preset.skipped.append(SkippedConfig(name, f"this build has no '{setting}' setting"))
            continue
        if setting == "reranker":
            reason = "no reranker configured: set RAGLINE_RERANKER or pass --reranker" if not value else None
            reason = reason or _reranker_available(str(value), models_dir, registered_models)
            if reason:
                preset.skipped.append(SkippedConfig(name, reason))
                continue
        current = {**current, setting: value}
        note = "single-turn questions carry no history, so memory has nothing to add" if setting == "memory" else ""
        preset.configs.append(PresetConfig(name, dict(current), note))
    return preset


def build_preset(
    name: str,
    fields: Mapping[str, Any],
    reranker: str | None = None,
    models_dir: Path | None = None,
    registered_models: Collection[str] = (),
) -> Preset:
    """The preset called ``name`` (see ``PRESETS``); ``ValueError`` for an unknown name."""
    if name == "ablation":
        return ablation(fields, reranker, models_dir, registered_models)
    raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
