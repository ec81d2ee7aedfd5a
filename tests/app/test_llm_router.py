"""ragline behind ``vllm-router``: two replicas, one of which fails every generation, and then is gone; no query
fails. The healthy replica is the session's real vLLM; the failing one is ``FakeFlakyLLM`` (a named fake: a real
vLLM cannot be made to answer 503 on demand), which answers health checks like a live server so the router keeps
routing to it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.fake_llm import FakeFlakyLLM
from app.query.pipeline import Pipeline
from app.resources import Resources
from app.vllm_server import VLLMServer, free_port
from tests.app.api.conftest import resources_like

pytestmark = pytest.mark.vllm
QUESTIONS = [  # the first four of eval/datasets/sample_qa.jsonl: each is answered, none abstains
    "How long do EU customers have to request a refund?",
    "Which command rotates a merchant's gateway token when card payments fail with ERR-4012?",
    "What does error code ERR-5003 indicate?",
    "What problem does error ERR-2290 signal?",
]


@pytest.fixture
def failing_replica(vllm_server: VLLMServer) -> Iterator[FakeFlakyLLM]:
    fake = FakeFlakyLLM(failures=10**6, status=503)
    fake.model = vllm_server.served_name
    with fake:
        yield fake


@pytest.fixture
def router(vllm_server: VLLMServer, failing_replica: FakeFlakyLLM, tmp_path: Path) -> Iterator[str]:
    binary = Path(sys.executable).parent / "vllm-router"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: install requirements/test.txt (vllm-router ships the router binary)")
    port = free_port()
    workers = [url.removesuffix("/v1") for url in (vllm_server.base_url, failing_replica.base_url)]
    log = (tmp_path / "router.log").open("w")
    process = subprocess.Popen(
        [str(binary), "--host", "127.0.0.1", "--port", str(port), "--prometheus-host", "127.0.0.1",
         "--prometheus-port", str(free_port()), "--policy", "round_robin", "--worker-urls", *workers],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "router.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "vllm-router did not answer"
            time.sleep(0.3)
        yield f"{url}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_a_failing_then_vanished_replica_costs_no_query(
    router: str, failing_replica: FakeFlakyLLM, live_resources: Resources, tmp_path: Path
) -> None:
    resources = resources_like(live_resources, llm_base_url=router, max_answer_tokens=48, llm_retries=0)
    pipeline = Pipeline(resources)
    answers = [pipeline.run(question, "sample") for question in QUESTIONS[:2]]
    assert failing_replica.requests >= 1  # the router did send generations to the failing replica
    failing_replica.stop()  # the replica is gone: its port refuses
    answers += [pipeline.run(question, "sample") for question in QUESTIONS[2:]]
    for answer in answers:
        generate = next(stage for stage in answer.trace["stages"] if stage["stage"] == "generate")
        assert answer.text.strip() and generate["completion_tokens"] > 0
