"""The pipeline switches of the sidebar, derived from the fields ``Settings`` actually has.

A switch appears only when its setting exists (and, for reranking, when a reranker is configured), so the UI
follows the pipeline as features are added instead of offering a switch the pipeline would reject. Choices come
from the field's ``Literal`` type, so a new positioning or compression mode shows up without a UI change. The
chosen values go to ``Pipeline.stream(..., options=...)``, which validates them like settings.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.settings import Settings

SwitchKind = Literal["choice", "toggle", "slider", "reranker"]


@dataclass(frozen=True)
class Switch:
    name: str
    label: str
    kind: SwitchKind
    default: Any
    choices: tuple[Any, ...] = ()
    help: str = ""


_LABELS = {
    "fusion": "Fusion",
    "fusion_alpha": "Fusion α (weight of dense)",
    "reranker": "Rerank",
    "positioning": "Positioning",
    "compression": "Compression",
    "memory": "Conversation memory",
}
SWITCH_ORDER = ("fusion", "fusion_alpha", "reranker", "positioning", "compression", "memory")


def _literal_choices(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    return ()


def available_switches(settings: Settings) -> list[Switch]:
    """The switches this build of the pipeline supports, with the configured values as defaults."""
    fields = type(settings).model_fields
    switches: list[Switch] = []
    for name in SWITCH_ORDER:
        info = fields.get(name)
        if info is None:
            continue
        default = getattr(settings, name)
        label, help_text = _LABELS[name], info.description or ""
        if name == "reranker":
            if default:  # offered only when a reranker is configured: the toggle turns that one on or off
                switches.append(Switch(name, label, "reranker", default, help=f"{help_text} Configured: {default}."))
        elif name == "fusion_alpha":
            switches.append(Switch(name, label, "slider", float(default), help=help_text))
        elif info.annotation is bool:
            switches.append(Switch(name, label, "toggle", bool(default), help=help_text))
        elif choices := _literal_choices(info.annotation):
            switches.append(Switch(name, label, "choice", default, choices, help_text))
    return switches


def options_from(values: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """Per-request ``options``: only the values that differ from the configured settings.

    An unchanged request then runs the pipeline's prebuilt stages; the reranker toggle maps to the configured
    reranker (on) or ``None`` (off).
    """
    options: dict[str, Any] = {}
    for name, value in values.items():
        if name == "reranker":
            value = settings.reranker if value else None  # type: ignore[attr-defined]
        if value != getattr(settings, name):
            options[name] = value
    return options
