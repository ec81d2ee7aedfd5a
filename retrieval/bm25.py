"""Persistent BM25 over a collection's chunks, served by bm25s (sparse matrices, not a per-query rescan).

The index is derived state: it is rebuilt from the manifest's indexed chunks whenever they change and saved
under a fingerprint of the chunk ids, so a stale or half-written index is detected and rebuilt, never served.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_STATE = "ragline-bm25.json"


def fingerprint(chunk_ids: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for chunk_id in chunk_ids:
        digest.update(chunk_id.encode() + b"\0")
    return digest.hexdigest()


class BM25Index:
    """bm25s index plus the chunk id of every row."""

    def __init__(self, ids: list[str], retriever: object | None, fingerprint_: str) -> None:
        self.ids = ids
        self._retriever = retriever
        self.fingerprint = fingerprint_

    @staticmethod
    def _tokenize(texts: list[str]) -> object:
        import bm25s

        return bm25s.tokenize(texts, stopwords="en", show_progress=False)

    @classmethod
    def build(cls, ids: list[str], texts: list[str]) -> BM25Index:
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        if not ids:
            return cls([], None, fingerprint([]))
        import bm25s

        retriever = bm25s.BM25()
        retriever.index(cls._tokenize(texts), show_progress=False)
        return cls(list(ids), retriever, fingerprint(ids))

    def save(self, folder: Path) -> None:
        """Write to a sibling folder and swap it in, so readers never see half an index."""
        staging = folder.with_name(folder.name + ".staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if self._retriever is not None:
            self._retriever.save(str(staging), show_progress=False)
        (staging / _STATE).write_text(json.dumps({"fingerprint": self.fingerprint, "ids": self.ids}))
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> BM25Index | None:
        state_path = folder / _STATE
        if not state_path.is_file():
            return None
        state = json.loads(state_path.read_text())
        if not state["ids"]:
            return cls([], None, state["fingerprint"])
        import bm25s

        retriever = bm25s.BM25.load(str(folder), show_progress=False)
        return cls(state["ids"], retriever, state["fingerprint"])

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Top-k (chunk id, score) with score > 0; ``mask`` (0/1 per row) restricts the rows scored."""
        if self._retriever is None or k <= 0:
            return []
        tokens = self._tokenize([query])
        k = min(k, len(self.ids))
        rows, scores = self._retriever.retrieve(tokens, k=k, show_progress=False, weight_mask=mask)
        return [(self.ids[int(row)], float(score)) for row, score in zip(rows[0], scores[0], strict=True) if score > 0]
