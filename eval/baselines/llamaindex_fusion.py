"""The stock LlamaIndex hybrid retriever, as a benchmark baseline for ragline's retriever.

A user who does not adopt ragline would most likely assemble hybrid retrieval from LlamaIndex's documented
parts: a ``QueryFusionRetriever`` in reciprocal-rank mode over LlamaIndex's BM25 retriever and a Chroma-backed
``VectorStoreIndex`` retriever. This module builds exactly that pipeline, with the same local embedder ragline
uses, so the benchmark can compare latency and nDCG against what users would otherwise run.

Choices that keep the comparison fair and offline:

* ``num_queries=1``: no LLM query rewriting (this baseline has no LLM). ``llm=None`` cannot be passed: the
  fusion retriever then falls back to ``Settings.llm``, which resolves to OpenAI and fails without
  ``llama-index-llms-openai``. A stand-in LLM that raises on any call is passed instead, so a stray LLM call
  fails loudly rather than going unnoticed.
* ``use_async=False``: both retrievers are CPU-bound and their async paths call the sync code, so the async
  mode only adds event-loop overhead to the measured latency (and breaks inside a running loop).
* Each text becomes one ``TextNode`` with no node parser, so documents are not re-chunked.
* Chroma always receives explicit embeddings (its collection has no embedding function) and telemetry is off.

The fusion deduplicates by node content hash, as stock LlamaIndex does, so identical texts under different ids
collapse into one result.

LlamaIndex is imported lazily: importing this module is cheap, and a missing package raises ImportError naming
the pip package to install (pins in ``requirements/app.txt``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["LlamaIndexFusionBaseline"]

_COLLECTION = "llamaindex-baseline"
_EMBED_BATCH_SIZE = 64

_PIP_PACKAGES = {
    "llama_index.core": "llama-index-core",
    "llama_index.retrievers.bm25": "llama-index-retrievers-bm25",
    "llama_index.vector_stores.chroma": "llama-index-vector-stores-chroma",
    "llama_index.embeddings.huggingface": "llama-index-embeddings-huggingface",
    "chromadb": "chromadb",
}


def _require(module: str) -> ModuleType:
    """Import ``module``; on failure raise ImportError naming the pip package that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = _PIP_PACKAGES[module]
        raise ImportError(
            f"the LlamaIndex baseline needs {module!r} ({exc}); install it with `pip install {package}` "
            "(the pinned version is in requirements/app.txt)"
        ) from exc


def _no_llm() -> Any:
    """An LLM that raises on every call: handed to QueryFusionRetriever so it never resolves a real one."""
    _require("llama_index.core")
    from llama_index.core.llms import CustomLLM, LLMMetadata

    class NoLLM(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="no-llm")

        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            raise RuntimeError("the LlamaIndex fusion baseline has no LLM; num_queries must stay 1")

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            raise RuntimeError("the LlamaIndex fusion baseline has no LLM; num_queries must stay 1")

    return NoLLM()


class LlamaIndexFusionBaseline:
    """LlamaIndex ``QueryFusionRetriever`` (reciprocal rank) over BM25 and a Chroma vector index.

    ``top_k`` is how many candidates each retriever returns and the fusion keeps; ``retrieve`` returns at most
    ``k <= top_k`` of them. The Chroma collection persists under ``persist_dir / "chroma"``; ``build`` replaces
    any collection a previous build left there. BM25 lives in memory, as in the stock pipeline.
    """

    def __init__(self, embedder_dir: Path, persist_dir: Path, top_k: int = 100) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.embedder_dir = Path(embedder_dir)
        self.persist_dir = Path(persist_dir)
        self.top_k = top_k
        self._embed_model: Any = None
        self._retriever: Any = None

    @property
    def fusion_retriever(self) -> Any:
        """The built ``QueryFusionRetriever`` (None before ``build``)."""
        return self._retriever

    def _embedder(self) -> Any:
        if self._embed_model is None:
            # A missing folder would be taken for a hub id by sentence-transformers: fail here instead.
            if not self.embedder_dir.is_dir():
                raise FileNotFoundError(f"embedder folder not found: {self.embedder_dir}")
            huggingface = _require("llama_index.embeddings.huggingface")
            self._embed_model = huggingface.HuggingFaceEmbedding(
                model_name=str(self.embedder_dir),
                embed_batch_size=_EMBED_BATCH_SIZE,
                show_progress_bar=False,
            )
        return self._embed_model

    def build(self, ids: list[str], texts: list[str], embeddings: Sequence[Sequence[float]] | None = None) -> None:
        """Index ``texts`` (one node per text, id ``ids[i]``) into Chroma and BM25 and assemble the fusion.

        ``embeddings`` (one per text, from the same embedder) skips embedding, as LlamaIndex does for nodes that
        already carry one: the scale benchmark reuses vectors instead of embedding 100k texts twice."""
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        if not ids:
            raise ValueError("nothing to index")
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be unique")

        chromadb = _require("chromadb")
        _require("llama_index.core")
        bm25 = _require("llama_index.retrievers.bm25")
        chroma_store = _require("llama_index.vector_stores.chroma")
        from chromadb.config import Settings as ChromaSettings
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.retrievers import QueryFusionRetriever
        from llama_index.core.schema import TextNode

        embed_model = self._embedder()
        if embeddings is not None and len(embeddings) != len(texts):
            raise ValueError(f"{len(embeddings)} embeddings but {len(texts)} texts")
        nodes = [
            TextNode(id_=node_id, text=text, embedding=list(embeddings[i]) if embeddings is not None else None)
            for i, (node_id, text) in enumerate(zip(ids, texts, strict=True))
        ]

        client = chromadb.PersistentClient(
            path=str(self.persist_dir / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
        )
        if any(collection.name == _COLLECTION for collection in client.list_collections()):
            client.delete_collection(_COLLECTION)
        collection = client.create_collection(_COLLECTION, embedding_function=None, metadata={"hnsw:space": "cosine"})
        storage = StorageContext.from_defaults(
            vector_store=chroma_store.ChromaVectorStore(chroma_collection=collection)
        )
        # Nodes passed directly skip the node parser; VectorStoreIndex embeds them embed_batch_size at a time.
        index = VectorStoreIndex(nodes=nodes, storage_context=storage, embed_model=embed_model)

        # Neither retriever can return more than the corpus holds (BM25 would warn and clamp).
        per_retriever = min(self.top_k, len(nodes))
        vector_retriever = index.as_retriever(similarity_top_k=per_retriever)
        bm25_retriever = bm25.BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=per_retriever)
        self._retriever = QueryFusionRetriever(
            [vector_retriever, bm25_retriever],
            llm=_no_llm(),
            mode="reciprocal_rerank",
            similarity_top_k=self.top_k,
            num_queries=1,
            use_async=False,
        )

    def retrieve(self, query: str, k: int) -> list[tuple[str, float]]:
        """Return up to ``k`` (node id, fused RRF score) pairs, best first."""
        if self._retriever is None:
            raise RuntimeError("call build() before retrieve()")
        if not 1 <= k <= self.top_k:
            raise ValueError(f"k must be in 1..{self.top_k} (top_k), got {k}")
        results = self._retriever.retrieve(query)
        return [(result.node.node_id, float(result.score or 0.0)) for result in results[:k]]
