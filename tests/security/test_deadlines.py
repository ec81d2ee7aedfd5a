"""Deadlines, cancellation and retries of the generator client, and what the API answers for each.

The reviewer's reproducer: an upstream sending one byte every 3 s kept requests open 31x past a 10 s timeout and
timeouts answered 503. Here a fake trickling upstream (a fault vLLM cannot show on demand) meets a short
``llm_timeout_s``; the cancellation test uses the real vLLM, whose request must stop when the client goes away.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from app.api.main import create_app
from app.fake_llm import FakeFlakyLLM, FakeTricklingLLM
from app.llm import LLMTimeoutError, LLMUnavailableError, OpenAICompatibleGenerator
from app.resources import Resources
from app.vllm_server import VLLMServer, free_port
from tests.app.api.conftest import client_for, resources_like

QUESTION = {"role": "user", "content": "How long do refunds take?"}


def wait_until(condition, timeout_s: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``condition``; the bound only keeps a broken build from hanging the suite."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


@pytest.fixture
def trickle() -> Iterator[FakeTricklingLLM]:
    with FakeTricklingLLM(interval_s=0.3) as fake:
        yield fake  # type: ignore[misc]


def test_a_trickling_upstream_meets_the_deadline_and_is_disconnected(trickle: FakeTricklingLLM) -> None:
    client = OpenAICompatibleGenerator(trickle.base_url, "m", timeout_s=1.5)
    with pytest.raises(LLMTimeoutError, match=r"did not finish within 1\.5 s"):
        client.chat([QUESTION], max_tokens=8)
    with pytest.raises(LLMTimeoutError):
        list(client.stream([QUESTION], max_tokens=8))
    with pytest.raises(LLMTimeoutError):
        client.next_token_logprobs([QUESTION])
    assert trickle.requests == 3  # a timeout is never retried
    assert wait_until(lambda: trickle.closed_by_client == 3), "the client must close each timed-out connection"


def test_the_api_answers_504_with_what_to_change_and_no_upstream_address(
    trickle: FakeTricklingLLM, sample_resources: Resources
) -> None:
    resources = resources_like(sample_resources, llm_base_url=trickle.base_url, llm_timeout_s=1.5)
    client = client_for(resources)
    for stream in (False, True):
        response = client.post("/v1/query", json={"question": "How long do refunds take?", "stream": stream})
        body = response.json()
        assert response.status_code == 504, body
        assert body["error"]["type"] == "gateway_timeout" and "RAGLINE_LLM_TIMEOUT_S" in body["error"]["message"]
        assert "127.0.0.1" not in response.text and str(trickle.server.server_address[1]) not in response.text
    chat = client.post("/v1/chat/completions", json={"model": "sample", "messages": [QUESTION]})
    assert chat.status_code == 504 and "127.0.0.1" not in chat.text


def _stream_error(text: str) -> dict[str, object]:
    """The error object of the one ``data:`` line of a stream that carries an error."""
    (error,) = [json.loads(line[6:])["error"] for line in text.splitlines() if line.startswith('data: {"error"')]
    return error


def test_a_generation_that_stalls_mid_stream_ends_with_a_504_error_event_and_a_closed_upstream(
    sample_resources: Resources,
) -> None:
    with FakeTricklingLLM(interval_s=0.3, deltas=("Refunds ", "take ")) as stalling:
        resources = resources_like(sample_resources, llm_base_url=stalling.base_url, llm_timeout_s=1.5)
        client = client_for(resources)
        query = client.post("/v1/query", json={"question": "How long do refunds take?", "stream": True})
        chat = client.post("/v1/chat/completions", json={"model": "sample", "stream": True, "messages": [QUESTION]})
        for response in (query, chat):
            assert response.status_code == 200  # the status line went out with the first delta
            assert "take " in response.text and str(stalling.server.server_address[1]) not in response.text
            error = _stream_error(response.text)
            assert error["status"] == 504 and error["type"] == "gateway_timeout", error
            assert "RAGLINE_LLM_TIMEOUT_S" in str(error["message"]) and "127.0.0.1" not in response.text
        assert "event: error" in query.text and chat.text.endswith("data: [DONE]\n\n")
        assert wait_until(lambda: stalling.closed_by_client == 2), "each stalled upstream must be closed by us"


def test_a_session_turn_past_the_deadline_is_a_504(trickle: FakeTricklingLLM, sample_resources: Resources) -> None:
    client = client_for(resources_like(sample_resources, llm_base_url=trickle.base_url, llm_timeout_s=1.5))
    session = f"deadline-{uuid.uuid4().hex[:8]}"
    assert client.post("/v1/sessions", json={"session_id": session}).status_code == 201
    try:
        response = client.post("/v1/query", json={"question": "How long do refunds take?", "session_id": session})
        assert response.status_code == 504 and response.json()["error"]["type"] == "gateway_timeout"
        assert "127.0.0.1" not in response.text
    finally:
        client.delete(f"/v1/sessions/{session}")


def test_a_dead_upstream_is_a_503_without_its_address(sample_resources: Resources) -> None:
    resources = resources_like(sample_resources, llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_retries=0)
    response = client_for(resources).post("/v1/query", json={"question": "How long do refunds take?"})
    assert response.status_code == 503 and "127.0.0.1" not in response.text
    assert response.json()["error"]["message"].startswith("the LLM service is not reachable")


@pytest.mark.parametrize(("status", "retries", "requests", "succeeds"), [(503, 2, 3, True), (502, 1, 2, False)])
def test_connect_failures_and_502_503_are_retried_a_bounded_number_of_times(
    status: int, retries: int, requests: int, succeeds: bool
) -> None:
    with FakeFlakyLLM(failures=2, status=status) as fake:
        client = OpenAICompatibleGenerator(fake.base_url, "m", timeout_s=30, retries=retries)
        if succeeds:
            assert client.chat([QUESTION], max_tokens=8).text == "Refunds take 5 days [1]."
        else:
            with pytest.raises(LLMUnavailableError, match=f"answered {status}"):
                client.chat([QUESTION], max_tokens=8)
        assert fake.requests == requests


def test_a_client_error_is_not_retried() -> None:
    with FakeFlakyLLM(failures=5, status=400) as fake:
        with pytest.raises(LLMUnavailableError, match="answered 400"):
            OpenAICompatibleGenerator(fake.base_url, "m", timeout_s=30, retries=3).chat([QUESTION], max_tokens=8)
        assert fake.requests == 1


def _vllm_idle(server: VLLMServer) -> bool:
    """No request running or waiting: a request of this test is then the only one the gauges can show."""
    return _vllm_metric(server, "vllm:num_requests_running") + _vllm_metric(server, "vllm:num_requests_waiting") == 0


def _vllm_metric(server: VLLMServer, name: str, reason: str | None = None) -> float:
    text = httpx.get(server.base_url.removesuffix("/v1") + "/metrics", timeout=30).text
    labels = rf'\{{[^}}]*finished_reason="{reason}"[^}}]*\}}' if reason else r"\{[^}]*\}"
    match = re.search(rf"^{re.escape(name)}{labels} (\S+)$", text, re.M)
    assert match, f"vLLM's /metrics has no {name}"
    return float(match.group(1))


@pytest.fixture
def without_garbage_collection() -> Iterator[None]:
    """An abandoned stream must be closed by the response itself: a collector that happens to run and finalise it
    would make the test pass by luck."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class UpstreamRelay:
    """A TCP relay between the API and the real vLLM that sees how each answer ended: the API closing its connection
    while vLLM was still streaming (no ``[DONE]`` yet) is this request's abort, whoever else uses the same vLLM."""

    def __init__(self, target: str) -> None:
        self.target = httpx.URL(target)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.closed_mid_answer = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"

    def _accept(self) -> None:
        while True:
            try:
                api, _ = self.listener.accept()
            except OSError:  # closed at the end of the test
                return
            vllm = socket.create_connection((self.target.host, self.target.port or 80))
            answer = {"streaming": False}
            threading.Thread(target=self._to_vllm, args=(api, vllm, answer), daemon=True).start()
            threading.Thread(target=self._to_api, args=(vllm, api, answer), daemon=True).start()

    def _to_vllm(self, api: socket.socket, vllm: socket.socket, answer: dict[str, bool]) -> None:
        with contextlib.suppress(OSError):
            while data := api.recv(65536):
                answer["streaming"] = False  # a new request on a kept-alive connection
                vllm.sendall(data)
        with self.lock:
            self.closed_mid_answer += answer["streaming"]
        for sock in (vllm, api):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _to_api(self, vllm: socket.socket, api: socket.socket, answer: dict[str, bool]) -> None:
        with contextlib.suppress(OSError):
            while data := vllm.recv(65536):
                if b"data: {" in data:
                    answer["streaming"] = True
                if b"data: [DONE]" in data:
                    answer["streaming"] = False
                api.sendall(data)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.usefixtures("without_garbage_collection")
def test_a_client_that_disconnects_from_a_stream_aborts_the_vllm_request(
    live_resources: Resources, vllm_server: VLLMServer
) -> None:
    """The API must close its connection to vLLM while the answer is still streaming, which vLLM answers by aborting
    the request. A relay sees this request's connection close mid-answer; vLLM's own gauges show the abort only when
    no other client uses it (vLLM 0.32 counts a disconnect under no ``finished_reason``, "abort" stays 0): then the
    request stops running at once and never finishes (a count to 3000 in words would run for minutes on a CPU)."""
    relay = UpstreamRelay(vllm_server.base_url)
    # a question off the corpus: the cosine gate would answer it with an abstention and never call vLLM
    settings = {"max_answer_tokens": 1500, "abstain_threshold": 0.0, "llm_base_url": relay.base_url}
    resources = resources_like(live_resources, **settings)
    server = uvicorn.Server(
        uvicorn.Config(create_app(resources), host="127.0.0.1", port=free_port(), log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    assert wait_until(lambda: server.started)
    # Under pytest-xdist the other worker shares this vLLM: its requests move the gauges at any moment.
    shared = os.environ.get("PYTEST_XDIST_WORKER") is not None
    alone = not shared and wait_until(lambda: _vllm_idle(vllm_server), timeout_s=30)
    finished = [_vllm_metric(vllm_server, "vllm:request_success_total", r) for r in ("stop", "length")]
    url = f"http://127.0.0.1:{server.config.port}/v1/query"
    question = {"question": "Count from 1 to 3000, writing every number in words, one per line.", "stream": True}
    try:
        for aborted, surface in enumerate(("query", "openai"), start=1):
            if surface == "openai":
                url = url.replace("/query", "/chat/completions")
                question = {
                    "model": "sample",
                    "stream": True,
                    "messages": [{"role": "user", "content": question["question"]}],
                }
            with httpx.stream("POST", url, json=question, timeout=600) as response:
                assert response.status_code == 200
                deltas = 0
                for line in response.iter_lines():
                    deltas += line.startswith(("event: delta", 'data: {"id"'))
                    if deltas == 4:
                        break  # the client goes away mid-answer
            assert deltas == 4, f"{surface}: the answer ended before the client could leave it"
            assert wait_until(lambda n=aborted: relay.closed_mid_answer == n, timeout_s=60), f"{surface}: vLLM not left"
            if alone:
                assert wait_until(lambda: _vllm_metric(vllm_server, "vllm:num_requests_running") == 0, timeout_s=60)
                now = [_vllm_metric(vllm_server, "vllm:request_success_total", r) for r in ("stop", "length")]
                assert now == finished, f"the {surface} request ran on after the client left"
        if not alone:
            warnings.warn("vLLM served other clients: its gauges were not checked, only the relay", stacklevel=1)
    finally:
        server.should_exit = True
        relay.close()
