"""RAGLINE_CHROMA_URL: the same index code over a real Chroma server process (``chroma run``), upload to answer."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import chromadb
import httpx
import pytest

from app.resources import Resources
from app.vllm_server import free_port
from ingest.samples import sample_corpus_dir
from tests.app.api.conftest import client_for, resources_like, upload, wait_for_job

pytestmark = pytest.mark.vllm
FILES = ["policies/refund-policy-eu-2024.md", "policies/refund-policy-uk.md", "policies/sla-uptime-credits.md"]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        pytest.fail(f"{chroma} is missing: install requirements/app.txt (chromadb ships the server)")
    port, folder = free_port(), tmp_path_factory.mktemp("chroma-server")
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [str(chroma), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(folder / "db")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (folder / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "chroma server did not answer"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        shutil.rmtree(folder / "db", ignore_errors=True)


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
