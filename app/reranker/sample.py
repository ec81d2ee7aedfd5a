"""Where the sample reranker lives and how to tell it was trained: names only, no training stack imported.

``app.profiles`` (read whenever settings are validated) and ``ragline demo`` need to know whether the sample
reranker exists; importing ``app.reranker.demo`` for that would load the whole training stack.
"""

from __future__ import annotations

from pathlib import Path

DEMO_RERANKER = "reranker-sample"
"""Folder name under the models dir; `ragline demo` and the enterprise profile use it when it exists."""
TRAINED_RECORD = "ragline-reranker.json"
"""Written by `ragline reranker train` beside every reranker it trains (``app.reranker.card.RECORD``)."""


def is_trained(folder: Path) -> bool:
    """A finished training: the model's config and ragline's training record are both there."""
    return (folder / "config.json").is_file() and (folder / TRAINED_RECORD).is_file()
