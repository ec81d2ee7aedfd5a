"""The model card renders from any record `ragline reranker eval` may update, not only from its own trainer's."""

from __future__ import annotations

import json
from pathlib import Path

from app.reranker.card import CARD, RECORD, render_card, write_record

HELD_OUT = {
    "queries": 2,
    "top_n": 20,
    "k": 10,
    "results": {
        "hybrid": {"ndcg@10": 0.5, "recall@10": 0.6, "mrr@10": 0.4, "ndcg@1": 0.3},
        "hybrid+rerank": {"ndcg@10": 0.7, "recall@10": 0.8, "mrr@10": 0.6, "ndcg@1": 0.5},
    },
    "latency": {"fp32 top-20": {"median_ms": 12.5, "p90_ms": 14.0, "queries": 2}},
}


def test_a_record_from_outside_the_trainer_renders_what_it_holds(tmp_path: Path) -> None:
    record = {
        "name": "reranker-x",
        "mode": "supervised",
        "base": "minilm-l6-v2",
        "data": {"source": "BEIR scifact", "collection": "beir-scifact", "pairs": 10, "positives": 2},
        "training": {"device": "a GPU", "lr": 2e-05, "max_len": 256},
        "held_out": HELD_OUT,
    }
    write_record(tmp_path, record)
    card = (tmp_path / CARD).read_text(encoding="utf-8")
    assert json.loads((tmp_path / RECORD).read_text(encoding="utf-8")) == record
    assert "- pairs: 10 (2 positive, 8 negative)" in card
    assert "- device: a GPU" in card and "- max_len: 256" in card
    assert "| hybrid+rerank | 0.7000 |" in card
    assert "median 12.5 ms" in card


def test_a_trainer_record_renders_the_training_summary() -> None:
    record = {
        "name": "reranker-y",
        "mode": "synthetic",
        "base": "minilm-l6-v2",
        "data": {
            "source": "synthetic",
            "collection": "sample",
            "negatives_per_query": 3,
            "depth": 30,
            "queries": 5,
            "pairs": 20,
            "positives": 5,
            "negatives": 15,
        },
        "training": {
            "loss": "BCE",
            "steps": 4,
            "epochs": 1.0,
            "batch_size": 16,
            "learning_rate": 5e-05,
            "max_length": 128,
            "seconds": 90.0,
            "training_loss": 0.5,
            "device": "cpu",
        },
        "held_out": None,
    }
    card = render_card(record)
    assert "3 negatives per query from the top 30" in card
    assert "- wall time: 1.5 min on cpu" in card and "Not evaluated" in card
