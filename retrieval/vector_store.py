"""Dense vectors in Chroma, embedded (a folder) by default or a Chroma server at scale: the same code path.

Chroma's default embedding function downloads a model, so collections are always created without one and
every call passes vectors computed by our own embedder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from retrieval.types import Chunk, Hit

_BATCH = 1000


def collection_name(collection: str) -> str:
    return f"ragline-{collection}"


def _chroma_metadata(chunk: Chunk) -> dict[str, Any]:
    metadata = {k: v for k, v in chunk.metadata.items() if isinstance(v, str | int | float | bool)}
    metadata.update(doc_id=chunk.doc_id, level=chunk.level)
    if chunk.parent_id:
        metadata["parent_id"] = chunk.parent_id
    return metadata


class ChromaVectorStore:
    """One Chroma collection per ragline collection, cosine space, our vectors."""

    def __init__(self, path: Path | None = None, url: str | None = None) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        if url:
            parsed = urlparse(url)
            self._client = chromadb.HttpClient(
                host=parsed.hostname or "127.0.0.1",
                port=parsed.port or 8000,
                ssl=parsed.scheme == "https",
                settings=settings,
            )
        elif path is not None:
            path.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(path=str(path), settings=settings)
        else:
            raise ValueError("ChromaVectorStore needs a path (embedded) or a url (server)")
        self._collections: dict[str, Any] = {}

    def _collection(self, collection: str) -> Any:
        if collection not in self._collections:
            self._collections[collection] = self._client.get_or_create_collection(
                collection_name(collection), configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
            )
        return self._collections[collection]

    def upsert(self, collection: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        target = self._collection(collection)
        for start in range(0, len(chunks), _BATCH):
            batch = chunks[start : start + _BATCH]
            target.upsert(
                ids=[c.id for c in batch],
                embeddings=vectors[start : start + _BATCH].tolist(),
                documents=[c.text for c in batch],
                metadatas=[_chroma_metadata(c) for c in batch],
            )

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        target = self._collection(collection)
        for start in range(0, len(ids), _BATCH):
            target.delete(ids=list(ids[start : start + _BATCH]))

    def ids(self, collection: str) -> set[str]:
        target = self._collection(collection)
        ids: set[str] = set()
        offset = 0
        while True:
            page = target.get(include=[], limit=_BATCH, offset=offset)["ids"]
            ids.update(page)
            if len(page) < _BATCH:
                return ids
            offset += _BATCH

    def vectors(self, collection: str, ids: Sequence[str]) -> np.ndarray:
        """Stored vectors for ``ids``, in that order; an unknown id is an error, not a zero row."""
        result = self._collection(collection).get(ids=list(ids), include=["embeddings"])
        by_id = dict(zip(result["ids"], result["embeddings"], strict=True))
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(f"no vectors for chunk ids {missing[:5]} in collection {collection!r}")
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    def count(self, collection: str) -> int:
        return int(self._collection(collection).count())

    def search(
        self,
        collection: str,
        vector: np.ndarray,
        k: int,
        where: Mapping[str, Any] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Nearest chunks by cosine; ``where`` and ``ids`` restrict the candidates before scoring.

        Each hit carries its stored vector: dedup compares candidates by vector, and reading them here costs less
        than a second round trip to Chroma for the same rows."""
        target = self._collection(collection)
        if target.count() == 0:
            return []
        result = target.query(
            query_embeddings=[vector.tolist()],
            n_results=k,
            where=dict(where) if where else None,
            ids=list(ids) if ids is not None else None,
            include=["documents", "metadatas", "distances", "embeddings"],
        )
        hits = []
        vectors = np.asarray(result["embeddings"][0], dtype=np.float32)
        for chunk_id, text, metadata, distance, stored in zip(
            result["ids"][0],
            result["documents"][0],
            result["metadatas"][0],
            result["distances"][0],
            vectors,
            strict=True,
        ):
            meta = dict(metadata or {})
            chunk = Chunk(
                id=chunk_id,
                doc_id=str(meta.get("doc_id", "")),
                text=text or "",
                metadata=meta,
                level=int(meta.get("level", 0)),
                parent_id=meta.get("parent_id"),
            )
            hits.append(Hit(chunk=chunk, score=1.0 - float(distance), stage="dense", vector=stored))
        return hits
