"""Application profiles: named sets of settings for the three uses the design starts from.

A profile is a set of defaults, not a mode: whatever a user sets explicitly (environment, ``ragline.toml``, a
request's other options) still wins over it, and ``ragline config show`` names the profile as the origin of each
value it supplied. Choosing one is one switch everywhere: ``RAGLINE_PROFILE`` or ``profile = "…"`` in
``ragline.toml``, ``--profile`` on ``ask``/``chat``/``eval qa``, the API option ``"profile"``, the UI's selector.

The values follow the design's descriptions of each application, not a search on our evaluation data; what each
costs and gives is measured per profile by ``ragline eval qa --profile …`` (docs/profiles.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.reranker.sample import DEMO_RERANKER as DEMO_RERANKER_FOLDER
from app.reranker.sample import is_trained


@dataclass(frozen=True)
class Profile:
    """One application profile: what it is for, why its values, and the settings it supplies."""

    name: str
    purpose: str
    why: str
    values: Mapping[str, Any] = field(default_factory=dict)
    needs_reranker: bool = False


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            "default",
            "The measured defaults: hybrid search, the best 4 chunks by relevance, no compression.",
            "What the README's numbers show; every other profile is measured against it.",
        ),
        Profile(
            "enterprise",
            "Knowledge assistant over policies, runbooks and wikis: short, precise evidence.",
            "15 semantic + 5 BM25 candidates, a cross-encoder keeps the best 3, LLMLingua compresses them about 2.5x "
            "and the prompt stays near 2,000 tokens: precision first, and a short prompt is what a CPU generator "
            "reads fastest.",
            {
                "dense_top_k": 15,
                "bm25_top_k": 5,
                "rerank_top_n": 20,
                "context_top_k": 3,
                "compression": "llmlingua",
                "compression_rate": 0.4,
                "positioning": "edge",
                "max_answer_tokens": 384,
                "context_budget_tokens": 2432,
            },
            needs_reranker=True,
        ),
        Profile(
            "research",
            "Long-form questions over papers and reports: recall and whole passages.",
            "40 + 40 candidates, 8 chunks in a 6,144-token prompt, nothing compressed (quotes stay exact), the "
            "best evidence at both edges of the prompt; documents ingested as a RAPTOR summary tree so that "
            "questions about a whole document find its summaries.",
            {
                "dense_top_k": 40,
                "bm25_top_k": 40,
                "rerank_top_n": 50,
                "context_top_k": 8,
                "compression": "off",
                "positioning": "edge",
                "max_answer_tokens": 768,
                "context_budget_tokens": 6144,
                "chunker": "raptor",
            },
        ),
        Profile(
            "code",
            "Questions over source code, configuration and SQL: exact identifiers, code kept whole.",
            "BM25 weighs more than the dense score (identifiers are rare exact tokens a sentence embedder blurs), "
            "larger chunks keep functions together, chunks are given in document order so code reads in sequence, "
            "and nothing is compressed (structured text never is).",
            {
                "bm25_top_k": 30,
                "dense_top_k": 10,
                "fusion_alpha": 0.3,
                "context_top_k": 5,
                "compression": "off",
                "positioning": "document",
                "chunk_size": 384,
                "max_answer_tokens": 512,
                "context_budget_tokens": 4096,
            },
        ),
    )
}
PROFILE_NAMES = tuple(PROFILES)


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}") from None


def fill_from_profile(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (settings given explicitly) with the named profile's values added where ``data`` has none."""
    name = data.get("profile") or "default"
    if not isinstance(name, str) or name not in PROFILES:
        return dict(data)  # the field's own validation reports the bad name
    return {**PROFILES[name].values, **data}


def with_options(
    current: Mapping[str, Any], options: Mapping[str, Any], field_defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Per-request ``options`` over ``current`` settings values.

    A ``profile`` option first takes back what the profile in force supplied (each of its values still in place
    returns to the field's default; values the server set otherwise stay), then applies the new profile's
    values; the request's other options apply on top of both."""
    merged = dict(current)
    name = options.get("profile")
    if isinstance(name, str) and name in PROFILES:
        in_force = PROFILES.get(str(current.get("profile") or "default"), PROFILES["default"])
        for key, value in in_force.values.items():
            if merged.get(key) == value and key in field_defaults:
                merged[key] = field_defaults[key]
        merged.update(PROFILES[name].values)
    merged.update(options)
    return merged


def profile_reranker(models_dir: Path) -> str:
    """The reranker a profile that reranks uses when none is configured: the demo one, if trained.

    Raises ``ValueError`` that says how to get one: a profile that promises a rerank stage never runs without it."""
    folder = models_dir / DEMO_RERANKER_FOLDER
    if is_trained(folder):
        return str(folder)
    raise ValueError(
        "this profile reranks its candidates, and no reranker is configured: set RAGLINE_RERANKER to a "
        "cross-encoder folder, or train the sample one with `ragline models install --reranker` (about 10 min)"
    )


def profile_reranker_or_none(models_dir: Path) -> str | None:
    """``profile_reranker``'s choice, or ``None`` where it would fail."""
    try:
        return profile_reranker(models_dir)
    except ValueError:
        return None


@dataclass(frozen=True)
class StageState:
    """One optional precision stage: on or off under the effective settings, and why."""

    stage: str
    on: bool
    why: str


def precision_stages(settings: Any) -> list[StageState]:
    """What ``ragline demo`` prints: each optional stage, whether it runs, and the measurement behind the choice."""
    reranker = settings.reranker
    return [
        StageState(
            "rerank",
            reranker is not None,
            f"cross-encoder {reranker}, top {settings.rerank_top_n} rescored {settings.rerank_mode} "
            f"(weight {settings.rerank_weight})"
            if reranker
            else "no reranker configured: no pretrained cross-encoder installs offline; `ragline models install "
            "--reranker` trains the sample one, `ragline reranker train --beir` one on your labelled queries "
            "(SciFact: +3.1 nDCG@10 on queries used for no choice, top 20 in 142 ms; docs/results/reranker.md)",
        ),
        StageState(
            "compression",
            settings.compression != "off",
            f"{settings.compression} at rate {settings.compression_rate}"
            if settings.compression != "off"
            else "LongLLMLingua at 2x kept a quarter of the exact answers and took longer than the prefill it saved "
            "(docs/results/compression.md)",
        ),
        StageState(
            "edge positioning",
            settings.positioning in ("edge", "edge-last"),
            f"evidence order {settings.positioning}"
            if settings.positioning in ("edge", "edge-last")
            else f"evidence order {settings.positioning}: edge order lost accuracy at 4 passages and tied at 20 "
            "(docs/results/context-positioning.md)",
        ),
        StageState(
            "HyDE",
            bool(settings.hyde),
            "a generated passage searched beside the question"
            if settings.hyde
            else "lowered SciFact nDCG@10 0.712 -> 0.679 and added 16 s per query (docs/results/hyde.md)",
        ),
        StageState(
            "answerability check",
            bool(settings.answerability_check),
            "the generator judges whether the evidence answers"
            if settings.answerability_check
            else "the generator's yes/no separated answerable questions worse than the dense-cosine cut "
            "(AUC 0.71 vs 0.95, docs/results/abstention.md)",
        ),
        StageState(
            "injection screen",
            bool(settings.injection_screen),
            "instruction-like sentences in evidence removed, facts kept (docs/security.md)"
            if settings.injection_screen
            else "off: documents' instructions reach the model unscreened",
        ),
    ]
