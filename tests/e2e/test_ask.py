"""End to end over the sample corpus: real Chroma, BM25, embedder and a real vLLM server started by the fixture."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from app.api import deps
from app.api.main import create_app
from app.query.pipeline import Answer, Pipeline
from app.resources import Resources
from ingest.loaders import discover, load_document
from ingest.samples import sample_corpus_dir

pytestmark = pytest.mark.vllm
EU_POLICY = "policies/refund-policy-eu-2024.md"
QUESTION = "How long do EU customers have to request a refund?"


@pytest.fixture(scope="module")
def pipeline(live_resources: Resources) -> Pipeline:
    return Pipeline(live_resources)


def test_answer_cites_the_current_eu_policy(pipeline: Pipeline) -> None:
    answer = pipeline.run(QUESTION, "sample")
    assert "30" in answer.text
    cited_docs = [c["doc_id"] for c in answer.citations]
    assert EU_POLICY in cited_docs, (answer.text, cited_docs)
    for citation in answer.citations:
        assert f"[{citation['id']}]" in answer.text
    stages = [s["stage"] for s in answer.trace["stages"]]
    retrieval = ["bm25", "dense", "fusion", "dedup", "window", "screen", "select", "position", "assemble", "abstain"]
    assert stages == [*retrieval, "generate", "citations"]
    generate = next(s for s in answer.trace["stages"] if s["stage"] == "generate")
    assert generate["prompt_tokens"] > 0 and generate["completion_tokens"] > 0


def test_exact_identifier_is_found_and_cited(pipeline: Pipeline) -> None:
    answer = pipeline.run("What does error ERR-4012 mean?", "sample")
    assert any("err-4012" in c["doc_id"] for c in answer.citations), answer.citations


def test_streaming_yields_deltas_then_the_checked_answer(pipeline: Pipeline) -> None:
    parts = list(pipeline.stream(QUESTION, "sample"))
    deltas, final = parts[:-1], parts[-1]
    assert len(deltas) > 1 and all(isinstance(d, str) for d in deltas)
    assert isinstance(final, Answer)
    assert final.text.replace(" ", "")[:10] in "".join(deltas).replace(" ", "")


def test_unknown_collection_is_a_clear_error(pipeline: Pipeline) -> None:
    with pytest.raises(LookupError, match="collection 'nope' does not exist"):
        pipeline.run(QUESTION, "nope")


def test_cli_ask_json_shape(live_resources: Resources, models_env) -> None:
    settings = live_resources.settings
    env = models_env(settings.data_dir, RAGLINE_LLM_BASE_URL=settings.llm_base_url)
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "ask", QUESTION, "--collection", "sample", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout)
    assert set(payload) == {"answer", "citations", "grounded", "unsupported_sentences", "warning", "trace"}
    assert payload["grounded"] is True and payload["warning"] is None
    assert payload["citations"], payload
    assert {"id", "doc_id", "source", "text"} <= set(payload["citations"][0])
    assert next(s["stage"] for s in payload["trace"]["stages"]) == "bm25"


@pytest.fixture(scope="module")
def api(live_resources: Resources) -> TestClient:
    application = create_app()
    application.dependency_overrides[deps.get_resources] = lambda: live_resources
    application.dependency_overrides[deps.get_pipeline] = lambda: Pipeline(live_resources)
    return TestClient(application)


def test_api_query_and_readiness(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.json()
    response = api.post("/v1/query", json={"question": QUESTION, "collection": "sample"})
    assert response.status_code == 200
    body = response.json()
    assert EU_POLICY in [c["doc_id"] for c in body["citations"]]
    assert api.post("/v1/query", json={"question": QUESTION, "collection": "nope"}).status_code == 404
    assert api.post("/v1/query", json={"question": "", "collection": "sample"}).status_code == 422


def test_api_streams_server_sent_events(api: TestClient) -> None:
    with api.stream("POST", "/v1/query", json={"question": QUESTION, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("event:")]
    assert events.count("event: answer") == 1 and events[-1] == "event: answer"
    assert events.count("event: delta") > 1


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"question": "", "collection": "sample"}, 422, "question"),
        ({"question": "x" * 10_000, "collection": "sample"}, 422, "limit is 4,000"),
        ({"question": "refund?", "filters": {"regoin": "EU"}}, 422, "unknown filter field(s) regoin"),
        ({"question": "refund?", "filters": {"region": {"$regex": "E.*"}}}, 422, "$regex"),
        ({"question": "refund?", "filters": {"effective_date": {"$gte": "2024-13-45"}}}, 422, "date"),
        ({"question": "refund?", "collection": "../etc"}, 422, "collection"),
    ],
)
def test_api_bad_input_is_a_clear_4xx(api: TestClient, payload: dict, status: int, message: str) -> None:
    response = api.post("/v1/query", json=payload)
    assert response.status_code == status
    assert message in json.dumps(response.json())


def test_filters_reach_both_searches_through_the_api(api: TestClient) -> None:
    body = api.post(
        "/v1/query",
        json={"question": "How long do customers have to request a refund?", "filters": {"region": "US"}},
    ).json()
    root = sample_corpus_dir()
    us_docs = {d.doc_id for d in (load_document(p, root) for p in discover(root)) if d.metadata.get("region") == "US"}
    stages = {s["stage"]: s for s in body["trace"]["stages"]}
    for stage in ("bm25", "dense"):
        assert stages[stage]["hits"], stage
        assert {h["doc_id"] for h in stages[stage]["hits"]} <= us_docs, stages[stage]
    assert "policies/refund-policy-us.html" in {h["doc_id"] for h in stages["bm25"]["hits"]}
