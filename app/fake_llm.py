"""Fake LLM upstreams for faults a real vLLM cannot be made to show on demand: one that trickles a byte every few
seconds and never finishes, one that fails with a chosen status a given number of times before answering.

They exist for the deadline and retry tests (``tests/security/test_deadlines.py``), the replica and router tests
(``tests/app/test_llm_replicas.py``, ``tests/app/test_llm_router.py``), for ``ragline bench load --llm trickle``
and for ``ragline bench replicas --llm instant`` (which measures the API tier without a generator); nothing else
may use them. Each listens on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    """Listen backlog: the default 5 overflows when ``bench load`` opens 32 connections at once, and the client
    sees connection errors (and retries) that are the fake's, not the API's."""


def _chunk(request: dict[str, Any], delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
    """One OpenAI ``chat.completion.chunk``, as vLLM streams them."""
    return {
        "id": "fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": request.get("model", "fake"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


class _FakeUpstream:
    """An HTTP server in a daemon thread; subclasses answer ``POST .../chat/completions``."""

    def __init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.requests += 1
                fake.answer(self, body)

            def do_GET(self) -> None:
                """Health and model list answer 200, as a live vLLM's do: a router keeps this upstream in its
                pool, so its faults reach the router's requests."""
                models = {"object": "list", "data": [{"id": fake.model, "object": "model"}]}
                payload = json.dumps(models if self.path.rstrip("/").endswith("/models") else {}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # silence the per-request log lines
                return

        self.lock = threading.Lock()
        self.model = "fake"
        """The model name ``GET /v1/models`` lists (a router checks it against the request's)."""
        self.requests = 0
        self.closed_by_client = 0
        """Connections the client closed while this fake was still sending: the abort a deadline must cause."""
        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name=type(self).__name__, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> _FakeUpstream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        raise NotImplementedError

    def __enter__(self) -> _FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeTricklingLLM(_FakeUpstream):
    """Accepts, sends ``200`` headers at once, then one byte every ``interval_s`` for ever: an HTTP read timeout
    restarts with every byte, so only a real deadline ends such a request. With ``deltas``, a streamed answer
    starts with those content chunks and then stalls: a generation that stops in the middle of an answer."""

    def __init__(self, interval_s: float = 0.5, deltas: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.deltas = deltas

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream" if body.get("stream") else "application/json")
        handler.end_headers()
        try:
            for delta in self.deltas if body.get("stream") else ():
                handler.wfile.write(f"data: {json.dumps(_chunk(body, {'content': delta}, None))}\n\n".encode())
            while True:
                handler.wfile.write(b" " if not body.get("stream") else b":")
                handler.wfile.flush()
                time.sleep(self.interval_s)
        except (BrokenPipeError, ConnectionResetError):
            with self.lock:
                self.closed_by_client += 1


class FakeFlakyLLM(_FakeUpstream):
    """Answers ``status`` to the first ``failures`` requests, then a one-chunk streamed completion (``text``)."""

    def __init__(self, failures: int, status: int = 503, text: str = "Refunds take 5 days [1].") -> None:
        super().__init__()
        self.failures, self.status, self.text = failures, status, text

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            failing = self.requests <= self.failures
        if failing:
            payload = json.dumps({"error": {"message": "upstream overloaded", "code": self.status}}).encode()
            handler.send_response(self.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        chunk = _chunk(body, {"content": self.text}, "stop")
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        handler.wfile.write(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode())
        handler.wfile.flush()
