"""``ragline bench replicas``' engine: real ``ragline serve`` processes over one real PostgreSQL and Chroma server,
load spread over them, one row per replica count. The LLM is the named fake ``FakeFlakyLLM`` (``--llm instant``),
which is what the bench uses to measure the API tier alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.bench_wiring import ReplicaSetupError, api_replicas
from app.ingestion import run_ingest
from app.settings import Settings
from eval.bench.replicas import compare_replicas
from ingest.samples import sample_corpus_dir


def test_replicas_share_one_store_and_each_row_counts_its_answers(
    settings_for: Callable[..., Settings], postgres_url: str, chroma_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path / "driver", database_url=postgres_url, chroma_url=chroma_url)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("refund-policy-eu-2024.md", "refund-policy-uk.md"):
        (corpus / name).write_text((sample_corpus_dir() / "policies" / name).read_text())
    summary = run_ingest(settings, corpus, "sample", prune=False, meta={}, chunker="fixed")
    assert len(summary.added) == 2 and not summary.failed, summary

    comparison = compare_replicas(
        lambda n: api_replicas(settings, n, "instant", tmp_path / f"run-{n}"),
        [1, 2],
        clients=4,
        seconds=3,
        client_timeout_s=60,
        collection="sample",
    )
    rows = comparison.summary()["rows"]
    assert [row["replicas"] for row in rows] == [1, 2]
    for row in rows:
        # every request answered 200: each replica (its own data dir, nothing on disk shared) built BM25 and found
        # the collection from PostgreSQL and Chroma alone
        assert set(row["load"]["by_status"]) == {"200"}, row["load"]["by_status"]
        assert row["ok_per_s"] > 0 and row["p50_ms"] is not None
    assert rows[0]["ok_per_s_ratio"] == 1.0 and "ok_per_s_ratio" in rows[1]
    assert len(comparison.lines()) == 4


def test_replicas_need_a_shared_store(settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    replicas = api_replicas(settings_for(tmp_path), 1, "instant", tmp_path / "run")
    with pytest.raises(ReplicaSetupError, match="RAGLINE_DATABASE_URL and RAGLINE_CHROMA_URL"), replicas:
        pass
