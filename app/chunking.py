"""Chunker factory: configuration names a chunker, this builds it with the models it needs.

``fixed`` and ``sentence-window`` need only the generator's tokenizer; ``semantic`` and ``semantic-cluster`` also
the embedder; ``raptor`` also the generator service, which writes the summaries (so vLLM must be running while a
RAPTOR collection is ingested). Each chunker carries a ``signature`` that enters the documents' index hash, so
switching chunkers re-chunks on the next ingest instead of silently mixing strategies in one collection.
"""

from __future__ import annotations

from app.resources import Resources
from ingest.job import Chunker

CHUNKERS = ("fixed", "semantic", "semantic-cluster", "raptor", "sentence-window")
RAPTOR_LEAF_TOKENS = 100


def make_chunker(resources: Resources, name: str) -> Chunker:
    from ingest.chunkers.fixed import FixedSizeChunker, load_token_counter

    if name not in CHUNKERS:
        raise ValueError(f"unknown chunker {name!r}; choose one of {', '.join(CHUNKERS)}")
    settings = resources.settings
    generator_dir = resources.generator_dir
    tokenize = load_token_counter(generator_dir)
    tokens = generator_dir.name
    if name == "fixed":
        return FixedSizeChunker(tokenize, settings.chunk_size, settings.chunk_overlap, tokenizer_name=tokens)
    if name == "sentence-window":
        from ingest.chunkers.sentence_window import SentenceWindowChunker

        return SentenceWindowChunker(
            tokenize, window=settings.sentence_window, max_tokens=settings.chunk_size, tokenizer_name=tokens
        )
    if name in ("semantic", "semantic-cluster"):
        from ingest.chunkers.semantic import ClusterSemanticChunker, MaxMinSemanticChunker

        kind = MaxMinSemanticChunker if name == "semantic" else ClusterSemanticChunker
        chunker = kind(resources.embedder.embed, tokenize, max_tokens=settings.chunk_size)
        chunker.signature = f"{name}:{settings.chunk_size}:{tokens}"
        return chunker
    from app.text_generator import VLLMTextGenerator
    from ingest.chunkers.raptor import RaptorChunker

    resources.generator.served_models()  # fail before ingesting anything when vLLM is not reachable
    leaves = FixedSizeChunker(tokenize, RAPTOR_LEAF_TOKENS, 0, tokenizer_name=tokens)
    raptor = RaptorChunker(leaves, resources.embedder.embed, VLLMTextGenerator(resources.generator))
    raptor.signature = f"raptor:{leaves.signature}:{resources.generator.model}"
    return raptor
