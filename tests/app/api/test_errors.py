"""Bad input gets a 4xx JSON error that says what to fix; an unexpected failure is a 500 without a traceback.

These never reach the generator (they fail in validation or retrieval), so they run without vLLM.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api import deps
from app.api.main import create_app
from app.resources import Resources
from app.vllm_server import free_port
from tests.app.api.conftest import client_for, resources_like


@pytest.fixture(scope="module")
def client(sample_resources: Resources) -> TestClient:
    return client_for(resources_like(sample_resources, llm_base_url=f"http://127.0.0.1:{free_port()}/v1"))


def chat(content: str, **extra: object) -> dict[str, object]:
    return {"model": "sample", "messages": [{"role": "user", "content": content}], **extra}


@pytest.mark.parametrize(
    ("path", "payload", "status", "message"),
    [
        ("/v1/query", {"question": "refund?", "filters": {"regoin": "EU"}}, 422, "unknown filter field(s) regoin"),
        ("/v1/query", {"question": "refund?", "filters": '{"region": "EU"'}, 422, "filters: Input should be"),
        ("/v1/query", {"question": "refund?", "filters": {"region": {"$like": "E"}}}, 422, "$like"),
        ("/v1/query", {"question": "refund?", "options": {"fuson": "rrf"}}, 422, "unknown option(s): fuson"),
        ("/v1/query", {"question": "refund?", "options": {"fusion": "best"}}, 422, "fusion"),
        ("/v1/query", {"question": "refund?", "options": {"llm_base_url": "http://x"}}, 422, "configure the server"),
        ("/v1/query", {"question": "refund?", "collection": "nope"}, 404, "collection 'nope' does not exist"),
        ("/v1/query", {"collection": "sample"}, 422, "question: Field required"),
        ("/v1/chat/completions", chat("refund?", model="nope"), 404, "collection 'nope' does not exist"),
        ("/v1/chat/completions", chat("refund?", n=2), 422, "n: Input should be less than or equal to 1"),
        (
            "/v1/chat/completions",
            {"model": "sample", "messages": [{"role": "assistant", "content": "hi"}]},
            422,
            "the last message must be the user's question",
        ),
        ("/v1/chat/completions", chat("refund?", filters={"regoin": "EU"}), 422, "unknown filter field(s) regoin"),
    ],
)
def test_bad_input_is_a_4xx_that_says_what_to_fix(
    client: TestClient, path: str, payload: dict, status: int, message: str
) -> None:
    response = client.post(path, json=payload)
    assert response.status_code == status, response.json()
    error = response.json()["error"]
    assert message in error["message"], error
    assert "Traceback" not in response.text


def test_malformed_json_unknown_routes_and_oversized_bodies(client: TestClient, sample_resources: Resources) -> None:
    broken = client.post("/v1/query", content=b'{"question": "x",', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["error"]["message"]
    assert client.get("/v1/nothing-here").json()["error"]["type"] == "not_found"
    assert client.put("/v1/query").status_code == 405
    typo = client.get("/v1/documents", params={"colection": "sample"})
    assert typo.status_code == 422 and "unknown query parameter(s) colection" in typo.json()["error"]["message"]

    small = client_for(resources_like(sample_resources, max_request_kb=1))
    declared = small.post("/v1/query", json={"question": "x" * 2000})
    assert declared.status_code == 413 and "RAGLINE_MAX_REQUEST_KB" in declared.json()["error"]["message"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while the body arrives
        yield b'{"question": "'
        yield b"x" * 4000
        yield b'"}'

    streamed = small.post("/v1/query", content=chunked(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413, streamed.text


class FakeBrokenPipeline:
    """A fake, for the one fault no real input causes: a bug inside the pipeline."""

    resources: Resources

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def run(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")


def test_an_unexpected_error_is_a_500_json_without_internals(sample_resources: Resources) -> None:
    app = create_app(sample_resources)
    app.dependency_overrides[deps.get_pipeline] = lambda: FakeBrokenPipeline(sample_resources)
    response = TestClient(app, raise_server_exceptions=False).post("/v1/query", json={"question": "refund?"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error == {"type": "internal_error", "message": "internal error; the server log has the details"}


def test_metrics_count_requests_and_errors_by_route(client: TestClient) -> None:
    client.post("/v1/query", json={"question": "refund?", "collection": "nope"})
    client.get("/healthz")
    text = client.get("/metrics").text
    assert 'ragline_http_requests_total{method="POST",route="/v1/query",status="404"}' in text
    assert 'ragline_http_errors_total{route="/v1/query",status="404"}' in text
    assert 'ragline_http_request_seconds_count{method="GET",route="/healthz"}' in text


def test_an_unreachable_database_is_a_503_that_names_no_server(sample_resources: Resources, tmp_path: Path) -> None:
    url = f"postgresql+psycopg://ragline:s3cret-pw@127.0.0.1:{free_port()}/ragline"  # nothing listens there
    client = client_for(resources_like(sample_resources, data_dir=tmp_path, database_url=url))
    response = client.get("/v1/collections")
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "service_unavailable" and "database is unavailable" in error["message"]
    assert "127.0.0.1" not in response.text and "s3cret" not in response.text
