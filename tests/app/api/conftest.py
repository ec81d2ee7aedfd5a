"""API test helpers: apps over real indexes (fresh or the session's sample index), job polling, a Chroma server."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.resources import Resources
from app.vllm_server import free_port


def resources_like(base: Resources, data_dir: Path | None = None, **overrides: Any) -> Resources:
    """Resources with other settings that reuse ``base``'s loaded embedder (and its index when the data dir is
    the same), so each test app does not load a model again."""
    update = {"data_dir": data_dir or base.settings.data_dir, **overrides}
    resources = Resources(base.settings.model_copy(update=update))
    resources.__dict__["embedder"] = base.embedder
    if data_dir is None and "chroma_url" not in overrides:
        resources.__dict__["index"] = base.index
    return resources


def client_for(resources: Resources, **kwargs: Any) -> TestClient:
    app: FastAPI = create_app(resources)
    return TestClient(app, **kwargs)


def wait_for_job(client: TestClient, job_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Poll a job until it ends; the deadline only keeps a hung job from hanging the suite."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def upload(
    client: TestClient,
    files: list[tuple[str, bytes]],
    headers: dict[str, str] | None = None,
    **form: str,
) -> Any:
    return client.post(
        "/v1/documents", files=[("files", (name, data)) for name, data in files], data=form, headers=headers
    )


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server process (``chroma run``) on a free 127.0.0.1 port, for this test module."""
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
