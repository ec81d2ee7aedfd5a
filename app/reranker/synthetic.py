"""Synthetic training queries (GPL / InPars style): the LLM writes a question for each sampled chunk.

A collection with no labelled queries still has passages; asking the generator "what question does this passage
answer?" turns each one into a (question, positive) pair. Generated questions are noisy, so a question is kept
only when our own hybrid retriever finds its source chunk in the top ``filter_top_k`` (a question that does not
retrieve its source is usually vague or about something else). Requests go to vLLM concurrently.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from app.reranker.data import LabelledQuery, MinedPairs, hybrid_search, mine_pairs
from app.resources import Resources
from app.text_generator import VLLMTextGenerator
from retrieval.types import Chunk

_PASSAGE = "Here is a passage from a document collection.\n\nPassage:\n{passage}\n\n"
PROMPTS = (
    _PASSAGE + "Write one specific question that a user could ask and that this passage answers. "
    "Use your own words; do not copy a whole sentence. Reply with the question only.",
    _PASSAGE + "Write one short question (under 12 words) that a user who has not read this passage would type "
    "into a search box to find it. Reply with the question only.",
    _PASSAGE + "Write one question about a specific detail in this passage (a number, a name, a condition or a "
    "step) that the passage answers. Reply with the question only.",
)
"""Question styles, InPars-like: ``--per-chunk N`` asks the first N of them for every sampled chunk, so a small
collection still yields enough varied training queries (a specific question, a terse search, a detail)."""
PROMPT = PROMPTS[0]
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
    resources: Resources,
    chunks: list[Chunk],
    *,
    styles: Sequence[str] = (PROMPT,),
    concurrency: int = 16,
    max_tokens: int = 64,
) -> list[str | None]:
    """One question per (chunk, style), chunk-major: ``len(chunks) * len(styles)`` answers in that order."""
    generator = VLLMTextGenerator(resources.generator, concurrency=concurrency)
    prompts = [style.format(passage=c.text) for c in chunks for style in styles]
    answers: list[str] = []
    batch = 4 * concurrency
    with tqdm(total=len(prompts), desc="write questions", unit="question") as bar:
        for start in range(0, len(prompts), batch):
            answers += generator.complete(prompts[start : start + batch], max_tokens=max_tokens)
            bar.update(len(prompts[start : start + batch]))
    return [clean_question(answer) for answer in answers]


def synthetic_questions(
    resources: Resources,
    collection: str,
    count: int,
    *,
    filter_top_k: int = 10,
    seed: int = 13,
    per_chunk: int = 1,
) -> list[dict[str, Any]]:
    """Sampled chunks with their generated questions (``per_chunk`` styles each) and whether each passed the
    retrieval filter. A repeated question (two styles giving the same text) is kept once."""
    if not 1 <= per_chunk <= len(PROMPTS):
        raise ValueError(f"per_chunk must be between 1 and {len(PROMPTS)}, got {per_chunk}")
    chunks = sample_chunks(resources.index.manifest.chunks(collection), count, seed)
    if not chunks:
        raise ValueError(f"collection {collection!r} has no chunks of {MIN_PASSAGE_CHARS}+ characters to ask about")
    styles = PROMPTS[:per_chunk]
    questions = generate_questions(resources, chunks, styles=styles)
    records = []
    seen: set[str] = set()
    for position, question in enumerate(questions):
        chunk = chunks[position // per_chunk]
        kept = False
        if question is not None and question.lower() not in seen:
            seen.add(question.lower())
            hits = hybrid_search(resources.index, resources.settings, collection, question, filter_top_k)
            kept = any(hit.chunk.id == chunk.id for hit in hits[:filter_top_k])
        records.append(
            {
                "question": question,
                "chunk_id": chunk.id,
                "doc_id": chunk.doc_id,
                "style": position % per_chunk,
                "kept": kept,
            }
        )
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
    per_chunk: int = 1,
) -> tuple[MinedPairs, dict[str, Any]]:
    """Training pairs from generated questions, plus a record of every question (kept or not) for the card."""
    records = synthetic_questions(
        resources, collection, count, filter_top_k=filter_top_k, seed=seed, per_chunk=per_chunk
    )
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
        "sampled": len({r["chunk_id"] for r in records}),
        "per_chunk": per_chunk,
        "generated": sum(1 for r in records if r["question"]),
        "kept": len(queries),
        "filter_top_k": filter_top_k,
        "questions": records,
    }
    return mined, info
