"""The sessions routes and ``POST /v1/query`` with a ``session_id``, over the live resources."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.resources import Resources


@pytest.mark.vllm
def test_session_lifecycle_over_http(memory_resources: Resources) -> None:
    client = TestClient(create_app(memory_resources))
    assert client.post("/v1/query", json={"question": "hi", "session_id": "nope"}).status_code == 404
    assert client.get("/v1/sessions/nope").json()["error"]["type"] == "not_found"
    assert client.post("/v1/sessions", json={"session_id": "bad id"}).status_code == 422

    created = client.post("/v1/sessions", json={"session_id": "api-s1", "user": "dee"})
    assert created.status_code == 201, created.text
    assert client.post("/v1/sessions", json={"session_id": "api-s1"}).status_code == 409

    body = {"question": "What is the refund window for UK customers?", "session_id": "api-s1"}
    answered = client.post("/v1/query", json={**body, "options": {"max_answer_tokens": 24}})
    assert answered.status_code == 200, answered.text
    assert answered.json()["trace"]["stages"][0]["stage"] == "memory"

    # the memory store is the session's: other tests (the UI's, on another xdist worker) add their own sessions
    listed = [s["id"] for s in client.get("/v1/sessions").json()["sessions"]]
    assert listed.count("api-s1") == 1
    export = client.get("/v1/sessions/api-s1").json()
    assert export["turns"][0]["question"] == body["question"] and export["turns"][0]["answer"]

    assert client.delete("/v1/sessions/api-s1").status_code == 204
    assert "api-s1" not in [s["id"] for s in client.get("/v1/sessions").json()["sessions"]]
    assert client.get("/v1/sessions/api-s1").status_code == 404
    assert client.delete("/v1/sessions/api-s1").status_code == 404
