"""Hostile per-request options: each is a 422 JSON error naming the option and what is allowed, never a 500, a
503 quoting vLLM, or a message that tells which server paths exist (issue 19, "options reach the engines unchecked").

The LLM is pointed at a closed port: a refused option never gets that far, an accepted one ends in 503.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.resources import Resources
from app.vllm_server import free_port
from tests.app.api.conftest import client_for, resources_like

QUESTION = "What does error code ERR-4012 mean?"


@pytest.fixture(scope="module")
def resources(sample_resources: Resources) -> Resources:
    return resources_like(sample_resources, llm_base_url=f"http://127.0.0.1:{free_port()}/v1")


@pytest.fixture(scope="module")
def client(resources: Resources) -> TestClient:
    return client_for(resources)


def query(client: TestClient, options: dict[str, Any]) -> Any:
    return client.post("/v1/query", json={"question": QUESTION, "collection": "sample", "options": options})


def assert_no_leak(text: str, resources: Resources) -> None:
    assert "Traceback" not in text
    for folder in (resources.settings.data_dir, resources.settings.resolved_models_dir):
        assert str(folder) not in text and str(folder.resolve()) not in text


@pytest.mark.parametrize(
    ("options", "named", "allowed"),
    [
        ({"dense_top_k": 1180591620717411303424}, ["dense_top_k"], "≤ 1000"),  # OverflowError, 500 before
        ({"bm25_top_k": 0}, ["bm25_top_k"], "≥ 1"),
        ({"rerank_top_n": 10**9}, ["rerank_top_n"], "≤ 1000"),
        ({"context_top_k": 5000}, ["context_top_k"], "≤ 100"),
        ({"bm25_k1": 1e308}, ["bm25_k1"], "≤ 10"),
        ({"temperature": -1}, ["temperature"], "≥ 0, ≤ 2"),
        (  # 503 quoting vLLM's 400 before
            {"context_budget_tokens": 1_000_000_000, "max_answer_tokens": 1_000_000},
            ["context_budget_tokens", "max_answer_tokens"],
            "vllm_max_model_len (8192)",
        ),
        ({"memory_budget_tokens": 10**6}, ["memory_budget_tokens"], "vllm_max_model_len (8192)"),
    ],
)
def test_out_of_range_options_are_422_naming_the_option_and_the_range(
    client: TestClient, resources: Resources, options: dict[str, Any], named: list[str], allowed: str
) -> None:
    response = query(client, options)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert all(name in error["message"] for name in named) and allowed in error["message"], error
    assert {problem["option"] for problem in error["details"]} == set(named)
    assert_no_leak(response.text, resources)


@pytest.mark.parametrize(
    "options",
    [
        {"compression": "llmlingua", "compression_model": "/etc"},  # 500 before
        {"compression": "llmlingua", "compression_model": "/no/such/folder"},
        {"compression": "llmlingua", "compression_model": "../../models/smollm2-135m"},
        {"reranker": "/etc"},  # its message told that /etc exists before
        {"reranker": "/no/such/folder"},
        {"reranker": "cross-encoder/ms-marco-MiniLM-L-6-v2"},  # a hub id: never downloaded on a request's behalf
    ],
)
def test_path_valued_options_accept_only_offered_models(
    client: TestClient, resources: Resources, options: dict[str, Any]
) -> None:
    response = query(client, options)
    assert response.status_code == 422, response.text
    option = "reranker" if "reranker" in options else "compression_model"
    message = response.json()["error"]["message"]
    assert message.startswith(f"invalid option(s): {option}: not a model this server offers (offered: ")
    assert options[option] not in message and "exist" not in message and "folder" not in message
    assert_no_leak(response.text, resources)


def test_an_existing_and_a_missing_path_get_the_same_answer(client: TestClient) -> None:
    """No oracle: whether a path exists on the server changes nothing in the reply."""
    for option in ("reranker", "compression_model"):
        present, absent = (query(client, {"compression": "llmlingua", option: path}) for path in ("/etc", "/nope"))
        assert present.status_code == absent.status_code == 422
        assert present.json() == absent.json()


def test_the_openai_route_checks_options_the_same_way(client: TestClient, resources: Resources) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    for options, option in [({"dense_top_k": 10**22}, "dense_top_k"), ({"reranker": "/etc"}, "reranker")]:
        body = {"model": "sample", "messages": messages, "options": options}
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["message"].startswith(f"invalid option(s): {option}: ")
        assert_no_leak(response.text, resources)


def test_options_within_range_and_the_servers_own_models_still_pass(client: TestClient, resources: Resources) -> None:
    settings = resources.settings
    options = {
        "dense_top_k": 1000,
        "context_top_k": 6,
        "max_answer_tokens": 96,
        "context_budget_tokens": settings.vllm_max_model_len,
        "compression_model": settings.compression_model,
        "reranker": None,
    }
    response = query(client, options)
    assert response.status_code == 503, response.text  # past validation, at the (closed) LLM port
    assert "is not reachable" in response.json()["error"]["message"]
