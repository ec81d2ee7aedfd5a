"""Prometheus metrics: HTTP requests and errors by route and status, per-stage latency, LLM tokens.

Stage latencies come from the answer's trace, the same numbers the UI and the eval reports show, so no stage is
timed twice. Each app has its own registry (tests build many apps in one process). Counters live in process
memory: with several worker processes, scrape each one (or run one worker per container, as compose does).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ragline_http_requests", "HTTP requests.", ["method", "route", "status"], registry=self.registry
        )
        self.errors = Counter(
            "ragline_http_errors", "HTTP responses with status >= 400.", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "ragline_http_request_seconds",
            "Time to the end of the response.",
            ["method", "route"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.stage_latency = Histogram(
            "ragline_stage_seconds",
            "Query pipeline stage latency, from the answer trace.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter("ragline_llm_tokens", "Generator tokens.", ["kind"], registry=self.registry)
        self.answers = Counter(
            "ragline_answers", "Answers returned, by API surface.", ["surface"], registry=self.registry
        )
        self.ungrounded = Counter(
            "ragline_ungrounded_answers",
            "Answers with claims and no sentence supported by a cited source.",
            ["surface"],
            registry=self.registry,
        )
        self.unsupported_sentences = Counter(
            "ragline_unsupported_sentences",
            "Answer sentences that no cited source supports.",
            ["surface"],
            registry=self.registry,
        )

    def observe_trace(self, trace: Mapping[str, Any], surface: str) -> None:
        self.answers.labels(surface).inc()
        self.unsupported_sentences.labels(surface).inc(int(trace.get("unsupported_sentences") or 0))
        if trace.get("grounded") is False:
            self.ungrounded.labels(surface).inc()
        for stage in trace.get("stages", []):
            self.stage_latency.labels(stage["stage"]).observe(stage.get("ms", 0.0) / 1000)
            for kind in ("prompt", "completion"):
                count = stage.get(f"{kind}_tokens")
                if isinstance(count, int) and count > 0:
                    self.tokens.labels(kind).inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _route_template(app: Any, scope: Scope) -> str:
    """The matched route's path template (``/v1/jobs/{job_id}``), so labels stay few; ``unmatched`` otherwise."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        path = getattr(candidate, "path", None)
        if path is not None and candidate.matches(scope)[0] == Match.FULL:
            return str(path)
    return "unmatched"


class MetricsMiddleware:
    """Counts every response, including those that middleware inside it (size limits) produced."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, router_app: Any) -> None:
        self.app, self.metrics, self.router_app = app, metrics, router_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = _route_template(self.router_app, scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
            if status >= 400:
                self.metrics.errors.labels(route, str(status)).inc()
