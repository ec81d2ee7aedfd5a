"""BM25 configuration, and a full bm25s build: the reference the served, segmented BM25 is checked against.

``BM25Config`` (method, k1, b, tokenizer) configures both. ``BM25Index`` builds bm25s (sparse matrices of final
per-term scores) over a whole collection in one go; since those scores bake in N, df and avgdl, any change to the
collection means a rebuild, which is why ``Index`` serves ``retrieval.bm25_segments.SegmentedBM25`` instead, whose
scores equal this build's (``tests/retrieval/test_bm25_segments.py``). ``BM25Index`` stays for that comparison,
for benchmarks (the "before" of ``ragline bench bm25-update``) and for one-off indexes; ``save``/``load`` keep a
build on disk under a fingerprint of the chunk ids and the config, swapped in so readers never see half of one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.tokenize import Tokenizer, TokenizerConfig

_STATE = "ragline-bm25.json"
METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")


@dataclass(frozen=True)
class BM25Config:
    """Scoring variant and parameters; ``lucene`` matches Lucene/Anserini, ``robertson`` matches rank-bm25."""

    method: str = "lucene"
    k1: float = 1.2
    b: float = 0.75
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "k1": self.k1, "b": self.b, "tokenizer": self.tokenizer.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BM25Config:
        return cls(data["method"], data["k1"], data["b"], TokenizerConfig(**data["tokenizer"]))


def fingerprint(chunk_ids: Sequence[str], config: BM25Config | None = None) -> str:
    digest = hashlib.sha256(json.dumps((config or BM25Config()).as_dict(), sort_keys=True).encode())
    for chunk_id in chunk_ids:
        digest.update(chunk_id.encode() + b"\0")
    return digest.hexdigest()


class BM25Index:
    """A bm25s index, the chunk id of every row, and the config it was built with."""

    def __init__(self, ids: list[str], retriever: Any | None, config: BM25Config, fingerprint_: str) -> None:
        self.ids = ids
        self._retriever = retriever
        self.config = config
        self.fingerprint = fingerprint_
        self._tokenize = Tokenizer(config.tokenizer)

    @classmethod
    def build(
        cls, ids: list[str], texts: list[str], config: BM25Config | None = None, *, dtype: str = "float32"
    ) -> BM25Index:
        config = config or BM25Config()
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        if not ids:
            return cls([], None, config, fingerprint([], config))
        import bm25s

        tokenize = Tokenizer(config.tokenizer)
        retriever = bm25s.BM25(k1=config.k1, b=config.b, method=config.method, dtype=dtype)
        retriever.index([tokenize(text) for text in texts], show_progress=False)
        return cls(list(ids), retriever, config, fingerprint(ids, config))

    def save(self, folder: Path) -> None:
        """Write to a sibling folder and swap it in, so readers never see half an index."""
        staging = folder.with_name(folder.name + ".staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if self._retriever is not None:
            self._retriever.save(str(staging), show_progress=False)
        state = {"fingerprint": self.fingerprint, "config": self.config.as_dict(), "ids": self.ids}
        (staging / _STATE).write_text(json.dumps(state))
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> BM25Index | None:
        """The saved index, or None when there is none or it predates the current state format."""
        state_path = folder / _STATE
        if not state_path.is_file():
            return None
        state = json.loads(state_path.read_text())
        if "config" not in state:
            return None
        config = BM25Config.from_dict(state["config"])
        if not state["ids"]:
            return cls([], None, config, state["fingerprint"])
        import bm25s

        retriever = bm25s.BM25.load(str(folder), show_progress=False)
        return cls(state["ids"], retriever, config, state["fingerprint"])

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Top-k (chunk id, score) with score > 0; ``mask`` (0/1 per row) restricts the rows scored."""
        if self._retriever is None or k <= 0:
            return []
        terms = [t for t in self._tokenize(query) if t in self._retriever.vocab_dict]
        if not terms:
            return []
        k = min(k, len(self.ids))
        rows, scores = self._retriever.retrieve([terms], k=k, show_progress=False, weight_mask=mask, n_threads=1)
        return [(self.ids[int(row)], float(score)) for row, score in zip(rows[0], scores[0], strict=True) if score > 0]
