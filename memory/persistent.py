"""The persistent tier: one Chroma collection per user, of facts and archived summaries, recalled by relevance.

It shares the index's Chroma client and embedder (one model load, one Chroma per data dir) and, as everywhere in
ragline, passes its own vectors so Chroma never reaches for its default embedding model. Collection names use a
'.' that ingested collection names cannot contain, so memory never collides with a document collection.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from memory.store import MemoryItem
from retrieval.protocols import Embedder
from retrieval.types import Chunk, Hit

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


class VectorStore(Protocol):
    """The slice of ``retrieval.vector_store.ChromaVectorStore`` memory uses."""

    def upsert(self, collection: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None: ...

    def delete(self, collection: str, ids: Sequence[str]) -> None: ...

    def count(self, collection: str) -> int: ...

    def search(
        self, collection: str, vector: np.ndarray, k: int, where: Mapping[str, Any] | None = None
    ) -> list[Hit]: ...


def _part(value: str) -> str:
    """A name part Chroma accepts; anything else (a tenant with spaces, a trailing dot) is hashed."""
    if _PLAIN.fullmatch(value) and value[-1].isalnum():
        return value
    return "h" + hashlib.sha256(value.encode()).hexdigest()[:20]


def memory_collection(tenant: str, user: str) -> str:
    return ".".join(["memory", *([_part(tenant)] if tenant else []), _part(user)])


@dataclass(frozen=True)
class Recalled:
    id: str
    kind: str
    text: str
    score: float
    session_id: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "score": round(self.score, 4), "session_id": self.session_id}


class PersistentMemory:
    def __init__(self, vectors: VectorStore, embedder: Embedder) -> None:
        self.vectors = vectors
        self.embedder = embedder

    def remember(self, items: Sequence[MemoryItem], *, tenant: str, user: str) -> None:
        if not items:
            return
        chunks = [
            Chunk(id=i.id, doc_id=i.session_id, text=i.text, metadata={"kind": i.kind, "session_id": i.session_id})
            for i in items
        ]
        self.vectors.upsert(memory_collection(tenant, user), chunks, self.embedder.embed([i.text for i in items]))

    def recall(self, query: str, *, tenant: str, user: str, k: int, min_score: float) -> list[Recalled]:
        """The ``k`` items closest to ``query`` with cosine at least ``min_score``, best first."""
        collection = memory_collection(tenant, user)
        if k <= 0 or self.vectors.count(collection) == 0:
            return []
        vector = self.embedder.embed([query])[0]
        hits = self.vectors.search(collection, vector, k)
        return [
            Recalled(
                id=hit.chunk.id,
                kind=str(hit.chunk.metadata.get("kind", "fact")),
                text=hit.chunk.text,
                score=hit.score,
                session_id=str(hit.chunk.metadata.get("session_id", hit.chunk.doc_id)),
            )
            for hit in hits
            if hit.score >= min_score
        ]

    def forget(self, ids: Sequence[str], *, tenant: str, user: str) -> None:
        if ids:
            self.vectors.delete(memory_collection(tenant, user), list(ids))

    def count(self, *, tenant: str, user: str) -> int:
        return self.vectors.count(memory_collection(tenant, user))
