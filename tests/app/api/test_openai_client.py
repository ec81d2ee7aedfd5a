"""The API served by uvicorn on 127.0.0.1, answered by a real vLLM, used through the official openai client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
import uvicorn

from app.api.main import create_app
from app.resources import Resources
from app.vllm_server import free_port

pytestmark = pytest.mark.vllm
EU_POLICY = "policies/refund-policy-eu-2024.md"
QUESTION = "How long do EU customers have to request a refund?"


@pytest.fixture(scope="module")
def base_url(live_resources: Resources) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(live_resources), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused-in-open-mode", max_retries=0, timeout=600)


def test_models_are_the_collections(client: openai.OpenAI) -> None:
    assert "sample" in [model.id for model in client.models.list()]


def test_chat_completion_answers_with_citations(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="sample", messages=[{"role": "user", "content": QUESTION}], max_tokens=160
    )
    content = response.choices[0].message.content or ""
    assert "30" in content and response.choices[0].finish_reason == "stop"
    citations = (response.model_extra or {})["citations"]
    assert EU_POLICY in [c["doc_id"] for c in citations]
    assert all(f"[{c['id']}]" in content for c in citations if c.get("origin") != "attributed")
    assert response.usage is not None and response.usage.completion_tokens > 0


def test_streamed_chat_completion_ends_with_citations_and_done(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="sample",
            messages=[
                {"role": "user", "content": "Hi, I bought something in Germany."},
                {"role": "assistant", "content": "How can I help?"},
                {"role": "user", "content": QUESTION},
            ],
            max_tokens=160,
            stream=True,
        )
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len(chunks) > 3 and text.strip()
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert EU_POLICY in [c["doc_id"] for c in (final.model_extra or {})["citations"]]


def test_client_errors_arrive_as_openai_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.UnprocessableEntityError, match="unknown filter field"):
        client.chat.completions.create(
            model="sample", messages=[{"role": "user", "content": QUESTION}], extra_body={"filters": {"regoin": "EU"}}
        )


def test_query_options_and_metrics_over_http(base_url: str) -> None:
    body = {"question": QUESTION, "options": {"context_top_k": 2, "max_answer_tokens": 96}}
    response = httpx.post(f"{base_url}/v1/query", json=body, timeout=600)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len({c["chunk_id"] for c in answer["citations"]}) <= 2
    select = next(s for s in answer["trace"]["stages"] if s["stage"] == "select")
    assert select["items_out"] <= 2
    metrics = httpx.get(f"{base_url}/metrics").text
    assert 'ragline_stage_seconds_count{stage="generate"}' in metrics
    assert 'ragline_stage_seconds_count{stage="bm25"}' in metrics
    assert 'ragline_llm_tokens_total{kind="completion"}' in metrics
    assert 'ragline_answers_total{surface="query"}' in metrics  # this test's own answer
