"""Synthetic training queries (GPL / InPars style): the LLM writes a question for each sampled chunk.

A collection with no labelled queries still has passages; asking the generator "what question does this passage
answer?" turns each one into a (question, positive) pair. Generated questions are noisy, so a question is kept
only when our own hybrid retriever finds its source chunk in the top ``filter_top_k`` (a question that does not
retrieve its source is usually vague or about something else). Requests go to vLLM concurrently.
"""

from __future__ import annotations

import random
import re
from typing import Any

from tqdm import tqdm

from app.reranker.data import LabelledQuery, MinedPairs, hybrid_search, mine_pairs
from app.resources import Resources
from app.text_generator import VLLMTextGenerator
from retrieval.types import Chunk

PROMPT = (
    "Here is a passage from a document collection.\n\n"
    "Passage:\n{passage}\n\n"
    "Write one specific question that a user could ask and that this passage answers. "
    "Use your own words; do not copy a whole sentence. Reply with the question only."
)
MIN_PASSAGE_CHARS = 200
_PREFIX = re.compile(r"^\s*(question\s*\d*\s*[:.-]|q\s*[:.-])\s*", re.IGNORECASE)


def clean_question(raw: str) -> str | None:
    """The first line of the reply without a "Question:" prefix or quotes; None when it is not a question."""
    lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
    if not lines:
        return None
    text = _PREFIX.sub("", lines[0]).strip().strip("\"'`*").strip()
    if len(text.split()) < 4 or len(text) > 300 or not text.endswith("?"):
        return None
    return text


def sample_chunks(chunks: list[Chunk], count: int, seed: int) -> list[Chunk]:
    """Up to ``count`` leaf chunks long enough to ask about, sampled with a fixed seed."""
    eligible = sorted((c for c in chunks if c.level == 0 and len(c.text) >= MIN_PASSAGE_CHARS), key=lambda c: c.id)
    return random.Random(seed).sample(eligible, min(count, len(eligible)))


def generate_questions(
    resources: Resources, chunks: list[Chunk], *, concurrency: int = 16, max_tokens: int = 64
) -> list[str | None]:
    generator = VLLMTextGenerator(resources.generator, concurrency=concurrency)
    answers: list[str] = []
    batch = 4 * concurrency
    with tqdm(total=len(chunks), desc="write questions", unit="chunk") as bar:
        for start in range(0, len(chunks), batch):
            prompts = [PROMPT.format(passage=c.text) for c in chunks[start : start + batch]]
            answers += generator.complete(prompts, max_tokens=max_tokens)
            bar.update(len(prompts))
    return [clean_question(answer) for answer in answers]


def synthetic_questions(
    resources: Resources, collection: str, count: int, *, filter_top_k: int = 10, seed: int = 13
) -> list[dict[str, Any]]:
    """Sampled chunks with their generated question and whether it passed the retrieval filter."""
    chunks = sample_chunks(resources.index.manifest.chunks(collection), count, seed)
    if not chunks:
        raise ValueError(f"collection {collection!r} has no chunks of {MIN_PASSAGE_CHARS}+ characters to ask about")
    questions = generate_questions(resources, chunks)
    records = []
    for chunk, question in zip(chunks, questions, strict=True):
        kept = False
        if question is not None:
            hits = hybrid_search(resources.index, resources.settings, collection, question, filter_top_k)
            kept = any(hit.chunk.id == chunk.id for hit in hits[:filter_top_k])
        records.append({"question": question, "chunk_id": chunk.id, "doc_id": chunk.doc_id, "kept": kept})
    return records


def synthetic_pairs(
    resources: Resources,
    collection: str,
    count: int,
    *,
    filter_top_k: int = 10,
    negatives: int = 3,
    depth: int = 30,
    seed: int = 13,
) -> tuple[MinedPairs, dict[str, Any]]:
    """Training pairs from generated questions, plus a record of every question (kept or not) for the card."""
    records = synthetic_questions(resources, collection, count, filter_top_k=filter_top_k, seed=seed)
    queries = [
        LabelledQuery(f"syn-{i}", r["question"], frozenset({r["doc_id"]}), (r["chunk_id"],))
        for i, r in enumerate(records)
        if r["kept"]
    ]
    if not queries:
        raise ValueError("no generated question retrieved its own passage; nothing to train on")
    mined = mine_pairs(resources.index, resources.settings, collection, queries, negatives=negatives, depth=depth)
    info = {
        "generator": resources.generator.model,
        "sampled": len(records),
        "generated": sum(1 for r in records if r["question"]),
        "kept": len(queries),
        "filter_top_k": filter_top_k,
        "questions": records,
    }
    return mined, info
