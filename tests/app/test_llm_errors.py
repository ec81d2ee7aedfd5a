"""Failures of the generator service surface as one clear sentence with the URL and the fix."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.llm import LLMUnavailableError, OpenAICompatibleGenerator
from app.resources import Resources
from app.vllm_server import VLLMServer, VLLMStartError, free_port


def test_unreachable_llm_names_url_and_command() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = OpenAICompatibleGenerator(url, "m", timeout_s=5)
    with pytest.raises(LLMUnavailableError, match=r"127\.0\.0\.1.*ragline llm serve"):
        client.chat([{"role": "user", "content": "hi"}], max_tokens=4)
    with pytest.raises(LLMUnavailableError, match="not reachable"):
        list(client.stream([{"role": "user", "content": "hi"}], max_tokens=4))


def test_vllm_refuses_a_busy_port(tmp_path: Path, generator_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = VLLMServer(generator_dir, "m", python=Path(sys.executable), port=port, log_path=tmp_path / "vllm.log")
        with pytest.raises(VLLMStartError, match=f"port {port} on 127.0.0.1 is already in use"):
            server.start(timeout_s=5)


def test_vllm_without_its_environment_says_how_to_create_it(tmp_path: Path, generator_dir: Path) -> None:
    server = VLLMServer(generator_dir, "m", python=tmp_path / "missing" / "python", log_path=tmp_path / "v.log")
    with pytest.raises(VLLMStartError, match=r"\./run setup"):
        server.start(timeout_s=5)


def test_cli_ask_with_llm_down_exits_with_one_clear_line(sample_resources: Resources, models_env) -> None:
    env = models_env(sample_resources.settings.data_dir, RAGLINE_LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1")
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "ask", "What is ERR-4012?", "--collection", "sample"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "ragline llm serve" in error_lines[0]
    assert "Traceback" not in result.stderr


def test_readyz_reports_the_unreachable_llm(sample_resources: Resources) -> None:
    from fastapi.testclient import TestClient

    from app.api import deps
    from app.api.main import create_app

    dead = sample_resources.settings.model_copy(update={"llm_base_url": f"http://127.0.0.1:{free_port()}/v1"})
    resources = Resources(dead)
    resources.__dict__["index"] = sample_resources.index
    application = create_app()
    application.dependency_overrides[deps.get_resources] = lambda: resources
    response = TestClient(application).get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["store"] == "ok" and body["checks"]["llm"].startswith("unreachable at http://127.0.0.1:")
