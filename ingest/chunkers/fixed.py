"""Fixed-size chunks measured in the generator's own tokens, cut on sentence boundaries.

Sizes are counted with the tokenizer of the model that will read the chunks, so a chunk of 256 tokens costs
256 tokens of the prompt budget, not "about 256". Splitting is delegated to llama-index's ``SentenceSplitter``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from ingest.document import Document
from retrieval.types import Chunk


def chunk_id(doc_id: str, index: int, text: str) -> str:
    """Deterministic: the same document always yields the same ids, which makes re-ingestion idempotent."""
    digest = hashlib.sha256(f"{doc_id}\0{index}\0{text}".encode()).hexdigest()[:16]
    return f"{digest}"


def load_token_counter(tokenizer_dir: Path) -> Callable[[str], list[int]]:
    """Tokenize with the ``tokenizer.json`` of a provisioned model folder."""
    from tokenizers import Tokenizer

    path = tokenizer_dir / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no tokenizer.json in {tokenizer_dir}: provision the generator with `ragline models install`"
        )
    tokenizer = Tokenizer.from_file(str(path))
    return lambda text: tokenizer.encode(text, add_special_tokens=False).ids


class FixedSizeChunker:
    """Sentence-aware fixed-size chunking with overlap."""

    name = "fixed"
    parallel_documents = 1

    def __init__(
        self,
        tokenize: Callable[[str], list[int]],
        chunk_size: int = 256,
        chunk_overlap: int = 32,
        tokenizer_name: str = "custom",
    ) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError(f"chunk_overlap must be in [0, chunk_size), got {chunk_overlap}")
        from llama_index.core.node_parser import SentenceSplitter

        self.signature = f"fixed:{chunk_size}:{chunk_overlap}:{tokenizer_name}"
        self._splitter = SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=tokenize)

    def chunk(self, document: Document) -> list[Chunk]:
        pieces = [p for p in self._splitter.split_text(document.text) if p.strip()]
        return [
            Chunk(
                id=chunk_id(document.doc_id, index, text),
                doc_id=document.doc_id,
                text=text,
                metadata={**document.metadata, "chunk_index": index},
            )
            for index, text in enumerate(pieces)
        ]
