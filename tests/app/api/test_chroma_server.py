"""RAGLINE_CHROMA_URL: the same index code over a real Chroma server process (``chroma run``), upload to answer."""

from __future__ import annotations

from pathlib import Path

import chromadb
import pytest

from app.resources import Resources
from ingest.samples import sample_corpus_dir
from tests.app.api.conftest import client_for, resources_like, upload, wait_for_job

pytestmark = pytest.mark.vllm
FILES = ["policies/refund-policy-eu-2024.md", "policies/refund-policy-uk.md", "policies/sla-uptime-credits.md"]


def test_upload_and_answer_through_a_chroma_server(chroma_url: str, live_resources: Resources, tmp_path: Path) -> None:
    resources = resources_like(live_resources, tmp_path / "data", chroma_url=chroma_url)
    client = client_for(resources)
    root = sample_corpus_dir()
    accepted = upload(client, [(Path(name).name, (root / name).read_bytes()) for name in FILES], collection="docs")
    job = wait_for_job(client, accepted.json()["job_id"])
    assert job["status"] == "succeeded", job

    server = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_url.rsplit(":", 1)[1]))
    assert server.get_collection("ragline-docs").count() == job["chunks"] == resources.index.counts("docs").chunks
    assert not (tmp_path / "data" / "chroma").exists()  # nothing embedded: the vectors live in the server

    response = client.post(
        "/v1/query", json={"question": "How long do EU customers have to request a refund?", "collection": "docs"}
    )
    assert response.status_code == 200, response.json()
    answer = response.json()
    assert "refund-policy-eu-2024.md" in [c["doc_id"] for c in answer["citations"]], answer["answer"]
    dense = next(s for s in answer["trace"]["stages"] if s["stage"] == "dense")
    assert dense["items_out"] > 0
