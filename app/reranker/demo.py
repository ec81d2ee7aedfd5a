"""The demo's reranker: a small cross-encoder trained on this machine for the bundled sample corpus.

No pretrained cross-encoder installs offline, so the demo trains one. Its training questions were written once by
the generator in synthetic mode (`ragline reranker train --synthetic --collection sample --per-chunk 3`: 276
questions asked about the 92 longer sample chunks, 233 kept because hybrid search finds their source chunk in the
top 10) and ship in ``sample_training_queries.jsonl``, so training needs no running LLM and gives the same model
everywhere. The model keeps 3 of MiniLM's 6 layers and reads 128 tokens per pair: that halves the training time on
a laptop CPU twice over, and is what makes the rerank stage affordable at query time.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import resources as package_files
from pathlib import Path
from typing import Any

from app.reranker.card import training_record, write_record
from app.reranker.data import LabelledQuery, mine_pairs
from app.reranker.sample import DEMO_RERANKER, is_trained
from app.reranker.train import TrainConfig, train_cross_encoder
from app.resources import Resources

QUERIES_FILE = "sample_training_queries.jsonl"
DEMO_CONFIG = TrainConfig(epochs=2, batch_size=16, learning_rate=5e-5, max_length=128, save_steps=25, layers=3)
NEGATIVES = 7


@dataclass(frozen=True)
class DemoReranker:
    path: Path
    seconds: float
    steps: int
    already_present: bool


def shipped_queries(collection_chunk_ids: set[str]) -> list[LabelledQuery]:
    """The shipped synthetic questions; a source chunk id the index no longer has (the corpus or the chunker
    changed) degrades to its document, whose chunks hybrid search then picks from."""
    text = package_files.files("app.reranker").joinpath(QUERIES_FILE).read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [
        LabelledQuery(
            f"syn-{i}",
            row["question"],
            frozenset({row["doc_id"]}),
            (row["chunk_id"],) if row["chunk_id"] in collection_chunk_ids else (),
        )
        for i, row in enumerate(rows)
    ]


def train_demo_reranker(
    resources: Resources,
    collection: str,
    *,
    out: Path | None = None,
    config: TrainConfig = DEMO_CONFIG,
    progress: bool = True,
) -> DemoReranker:
    """Train (or resume, or find already trained) the demo reranker for ``collection`` (the ingested sample)."""
    out = out or resources.settings.resolved_models_dir / DEMO_RERANKER
    if is_trained(out):
        return DemoReranker(out, 0.0, 0, already_present=True)
    chunk_ids = {chunk.id for chunk in resources.index.manifest.chunks(collection)}
    if not chunk_ids:
        raise ValueError(f"collection {collection!r} is empty: ingest the sample corpus first")
    queries = shipped_queries(chunk_ids)
    mined = mine_pairs(resources.index, resources.settings, collection, queries, negatives=NEGATIVES, progress=progress)
    base = resources.embedder.model_dir
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = train_cross_encoder(base, mined.pairs, out, config, progress=progress)
    record: dict[str, Any] = {
        "name": DEMO_RERANKER,
        "mode": "synthetic",
        "base": str(base),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "data": {
            "source": f"{len(queries)} shipped synthetic questions about the sample corpus ({QUERIES_FILE})",
            "collection": collection,
            "queries": mined.queries,
            "skipped": mined.skipped,
            "pairs": len(mined.pairs),
            "positives": mined.positives,
            "negatives": mined.negatives,
            "negatives_per_query": NEGATIVES,
            "depth": 30,
            "seed": config.seed,
            "held_out_queries": 0,
            "notes": ["evaluate on the sample QA set: `ragline eval qa --preset ablation --reranker reranker-sample`"],
        },
        "training": training_record(config, result),
        "held_out_qids": [],
        "held_out": None,
    }
    write_record(out, record)
    return DemoReranker(out, time.perf_counter() - started, result.steps, already_present=False)
