"""Why the ingestion job embeds large batches: the padding a small embedding call costs, counted exactly.

The embedder sorts texts by length only within one call and pads each mini-batch to its longest text, so the
fewer documents per call, the more padded tokens; this counts them from token lengths, with no clock involved."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PADDING_BATCHES = (32, 128, 256, 512, 1024)
EMBED_MINI_BATCH = 64  # SentenceTransformerEmbedder's default batch_size


@dataclass(frozen=True)
class PaddingRatios:
    """Padded tokens per documents-per-embedding-call, relative to one sorted pass (``padding_by_batch``)."""

    documents: int
    corpus: str
    ratios: dict[int, float]


def padded_tokens(lengths: Sequence[int], mini_batch: int) -> int:
    """Tokens the embedder computes for texts of ``lengths`` in one call: it sorts them by length and pads each
    mini-batch to its longest text (sentence-transformers' ``encode``)."""
    ordered = sorted(lengths, reverse=True)
    return sum(
        max(ordered[i : i + mini_batch]) * len(ordered[i : i + mini_batch]) for i in range(0, len(ordered), mini_batch)
    )


def padding_by_batch(
    lengths_per_document: Sequence[Sequence[int]], batch_documents: Sequence[int], mini_batch: int
) -> dict[int, float]:
    """Padded tokens when the job embeds ``n`` documents per call, relative to one sorted pass over everything.

    Why the job's batches are large: the embedder sorts by length only within a call, so the smaller the call the
    more padding each mini-batch carries; this counts it exactly, with no clock involved."""
    everything = padded_tokens([n for lengths in lengths_per_document for n in lengths], mini_batch)
    out = {}
    for size in batch_documents:
        total = 0
        for start in range(0, len(lengths_per_document), size):
            window = [n for lengths in lengths_per_document[start : start + size] for n in lengths]
            total += padded_tokens(window, mini_batch) if window else 0
        out[size] = total / everything
    return out


def embedder_token_lengths(model_dir: Path, texts_per_document: Sequence[Sequence[str]]) -> list[list[int]]:
    """Each text's length in the embedder's own tokens, capped at its ``max_seq_length`` as ``encode`` does."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    config = model_dir / "sentence_bert_config.json"
    cap = json.loads(config.read_text()).get("max_seq_length", 512) if config.is_file() else 512
    return [
        [min(len(ids), cap) for ids in tokenizer(list(texts))["input_ids"]] if texts else []
        for texts in texts_per_document
    ]
